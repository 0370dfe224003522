/* fuzz_script.c — the input is a script, run by the shell's own loop
 * (session_run_fd, watched line by line through session_watch) on a fresh
 * memory store, in JSON mode and then in text mode. Each line lines.c reads
 * is checked against a plain split on LF.
 *
 * After every command: the store replays cleanly (positions 1..head without
 * gaps, each stream's versions 1..n, no balance below 0 or past INT64_MAX),
 * a write did exactly what SPEC's rules say given the balances before it
 * (one model, kept from the replay), a failed command changed nothing, the
 * balance sheet moved only on refresh or rebuild and then equals the
 * replay, and the command printed exactly one valid JSON line (none for a
 * blank line) whose fields agree. At the end a refresh and a rebuild must
 * both leave the sheet equal to the replay, and the money in the sheet must
 * be the credits less the debits. Text mode must give every command the same
 * outcome and never print a control character. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "simplecqrs/cmd.h"
#include "simplecqrs/lines.h"
#include "simplecqrs/session.h"
#include "simplecqrs/parse.h"
#include "simplecqrs/xmalloc.h"
#include "fuzz.h"

#define MAX_LINES 256	/* lines run per input: memory and time stay bounded */
#define SLOTS 1024	/* model hash slots: more than 2 * MAX_LINES streams */

/* ---- the model: what a replay of the store says ---- */

typedef struct stream_model {
	char *id;		/* NULL: free slot */
	uint64_t version;
	int64_t balance;
	uint32_t key;		/* the store's stream_key */
	uint64_t seen;		/* events met in the final stream read */
} stream_model;

typedef struct event_model {
	uint32_t slot;		/* its stream */
	uint64_t version;
	event_type type;
	int64_t amount;
} event_model;

static struct {
	stream_model streams[SLOTS];
	size_t nstreams;
	event_model *events;	/* by position - 1 */
	size_t nevents, cap;
	__int128 credits, debits;
} m;

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The stream's slot, or where it would go. */
static uint32_t slot_of(const char *id)
{
	uint32_t i = hash(id) & (SLOTS - 1);
	while (m.streams[i].id && strcmp(m.streams[i].id, id) != 0)
		i = (i + 1) & (SLOTS - 1);
	return i;
}

static const stream_model *find(const char *id)
{
	const stream_model *s = &m.streams[slot_of(id)];
	return s->id ? s : NULL;
}

static void model_reset(void)
{
	for (size_t i = 0; i < SLOTS; i++)
		free(m.streams[i].id);
	free(m.events);
	memset(&m, 0, sizeof m);
}

/* Applies one event read from the store, checking it as it goes. */
static int apply(void *ctx, const store_event *ev)
{
	(void)ctx;
	FUZZ_CHECK(ev->position == m.nevents + 1, "position %llu after %zu",
		   (unsigned long long)ev->position, m.nevents);
	FUZZ_CHECK(ev->stream != NULL && parse_account(ev->stream),
		   "stream id '%s'", ev->stream ? ev->stream : "(null)");
	FUZZ_CHECK(ev->type == EVENT_CREDITED || ev->type == EVENT_DEBITED,
		   "type %d", (int)ev->type);
	FUZZ_CHECK(ev->amount > 0, "amount %lld", (long long)ev->amount);
	uint32_t i = slot_of(ev->stream);
	stream_model *s = &m.streams[i];
	if (s->id == NULL) {
		FUZZ_CHECK(m.nstreams < SLOTS / 2, "too many streams");
		s->id = strdup(ev->stream);
		s->key = ev->stream_key;
		m.nstreams++;
		for (size_t k = 0; k < SLOTS; k++)	/* keys name one stream each */
			FUZZ_CHECK(k == i || !m.streams[k].id || ev->stream_key == 0 ||
				   m.streams[k].key != ev->stream_key,
				   "key %u for %s and %s", ev->stream_key,
				   m.streams[k].id, ev->stream);
	}
	FUZZ_CHECK(ev->stream_key == s->key, "stream %s changed key", s->id);
	FUZZ_CHECK(ev->version == s->version + 1, "stream %s: version %llu after %llu",
		   s->id, (unsigned long long)ev->version,
		   (unsigned long long)s->version);
	s->version = ev->version;
	if (ev->type == EVENT_CREDITED) {
		FUZZ_CHECK(!__builtin_add_overflow(s->balance, ev->amount, &s->balance),
			   "%s passes INT64_MAX at position %llu", s->id,
			   (unsigned long long)ev->position);
		m.credits += ev->amount;
	} else {
		s->balance -= ev->amount;
		FUZZ_CHECK(s->balance >= 0, "%s below 0 at position %llu", s->id,
			   (unsigned long long)ev->position);
		m.debits += ev->amount;
	}
	if (m.nevents == m.cap) {
		m.cap = m.cap ? m.cap * 2 : 64;
		m.events = realloc(m.events, m.cap * sizeof *m.events);
	}
	m.events[m.nevents++] = (event_model){ i, ev->version, ev->type, ev->amount };
	return 0;
}

/* Reads the events after the model's head (in odd-sized pages) and checks
 * the store's head and counts against it. */
static void catch_up(store *st)
{
	for (;;) {
		size_t before = m.nevents;
		FUZZ_CHECK(store_read_all(st, m.nevents, 7, apply, NULL) == ERR_OK,
			   "read_all failed");
		if (m.nevents - before < 7)
			break;
	}
	uint64_t head, count, streams;
	FUZZ_CHECK(store_head(st, &head) == ERR_OK && head == m.nevents,
		   "head %llu, %zu events read", (unsigned long long)head, m.nevents);
	FUZZ_CHECK(store_count_after(st, 0, &count) == ERR_OK && count == head,
		   "count_after(0) %llu", (unsigned long long)count);
	FUZZ_CHECK(store_stream_count(st, &streams) == ERR_OK &&
		   streams == m.nstreams, "%llu streams, %zu in the replay",
		   (unsigned long long)streams, m.nstreams);
}

/* ---- the balance sheet against the model ---- */

static void check_sheet(const sheet *sh)
{
	FUZZ_CHECK(sheet_checkpoint(sh) == m.nevents, "checkpoint %llu, head %zu",
		   (unsigned long long)sheet_checkpoint(sh), m.nevents);
	size_t n;
	sheet_row *rows = sheet_sorted(sh, &n);
	FUZZ_CHECK(n == m.nstreams && n == sheet_count(sh), "%zu rows, %zu streams",
		   n, m.nstreams);
	__int128 total = 0;
	for (size_t i = 0; i < n; i++) {
		const stream_model *s = find(rows[i].account);
		FUZZ_CHECK(s != NULL, "the sheet has %s, the store not", rows[i].account);
		FUZZ_CHECK(rows[i].balance == s->balance, "%s: sheet %lld, replay %lld",
			   s->id, (long long)rows[i].balance, (long long)s->balance);
		int64_t b;
		FUZZ_CHECK(sheet_balance(sh, s->id, &b) && b == s->balance,
			   "sheet_balance(%s)", s->id);
		FUZZ_CHECK(i == 0 || strcmp(rows[i - 1].account, rows[i].account) < 0,
			   "rows out of order at %zu", i);
		total += rows[i].balance;
	}
	free(rows);
	FUZZ_CHECK(total == m.credits - m.debits, "money not conserved");
}

/* ---- output ---- */

static int out_fd = -1, in_fd = -1;
static off_t out_seen;	/* output already checked */
static char *outbuf;
static size_t outcap;

/* The output since the last call. */
static size_t new_output(void)
{
	off_t end = lseek(out_fd, 0, SEEK_CUR);
	size_t n = (size_t)(end - out_seen);
	if (n + 1 > outcap) {
		outcap = n + 1;
		outbuf = xrealloc(outbuf, outcap);
	}
	FUZZ_CHECK(pread(out_fd, outbuf, n, out_seen) == (ssize_t)n, "pread");
	out_seen = end;
	outbuf[n] = '\0';
	return n;
}

static void reset_file(int fd)
{
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0, "reset");
}

static int tmp_fd(void)
{
	FILE *f = tmpfile();	/* kept open for the process's life */
	FUZZ_CHECK(f != NULL, "tmpfile");
	return fileno(f);
}

static int64_t fixed_clock(void)
{
	return INT64_C(1795813384123);	/* 2026-11-27T21:03:04.123Z */
}

/* ---- one command, in JSON mode ---- */

/* What a write should do, from the balances before it (SPEC's rules). */
static error_code expect_write(const cmd_parsed *p)
{
	const char *name = p->cmd->name;
	const stream_model *a = find(p->arg.account[0]);
	int64_t sum;
	if (strcmp(name, "deposit") == 0)
		return a && __builtin_add_overflow(a->balance, p->arg.amount, &sum)
			? ERR_OVERFLOW : ERR_OK;
	if (a == NULL)
		return ERR_UNKNOWN_ACCOUNT;
	if (a->balance < p->arg.amount)
		return ERR_INSUFFICIENT_FUNDS;
	if (strcmp(name, "transfer") == 0) {
		const stream_model *b = find(p->arg.account[1]);
		if (b && __builtin_add_overflow(b->balance, p->arg.amount, &sum))
			return ERR_OVERFLOW;
	}
	return ERR_OK;
}

static bool is_write(const cmd_entry *c)
{
	return c && (strcmp(c->name, "deposit") == 0 ||
		     strcmp(c->name, "withdraw") == 0 ||
		     strcmp(c->name, "transfer") == 0);
}

static bool is_sheet_write(const cmd_entry *c)
{
	return c && (strcmp(c->name, "refresh") == 0 || strcmp(c->name, "rebuild") == 0);
}

static void check_string(const fuzz_member *mb, const char *want, size_t n,
			 const char *what)
{
	FUZZ_CHECK(mb != NULL, "no %s", what);
	unsigned char *got = malloc(mb->value_len + 1), *exp = malloc(3 * n + 1);
	size_t got_len, exp_len = fuzz_json_expect((const unsigned char *)want, n, exp);
	FUZZ_CHECK(fuzz_json_get_string(mb, got, &got_len), "%s is no string", what);
	FUZZ_CHECK(got_len == exp_len && memcmp(got, exp, got_len) == 0,
		   "%s '%.*s' is not '%.*s'", what, (int)mb->value_len, mb->value,
		   (int)n, want);
	free(got);
	free(exp);
}

static void check_u64(const fuzz_json *j, const char *key, uint64_t want)
{
	uint64_t v;
	FUZZ_CHECK(fuzz_json_get_u64(fuzz_json_get(j, key), &v) && v == want,
		   "%s is not %llu", key, (unsigned long long)want);
}

static char *copy;	/* the line as parsed on its own, before cmd_run */
static size_t copy_cap;

/* What a line should do, worked out before the session runs it (which
 * parses it in place). */
static struct expect {
	cmd_parsed p;
	error_code prc, want;
	bool blank;
	const cmd_entry *cmd;
	uint64_t head, checkpoint;
	size_t rows;
	uint64_t old_version[2];
} x;

static void expect_line(const session *ses, const char *text, size_t len,
			bool too_long)
{
	const cmd_ctx *ctx = &ses->ctx;
	/* what the parser makes of the line, on a copy */
	cmd_parsed p = { 0 };
	error_code prc = ERR_LINE_TOO_LONG;
	if (len + 1 + PARSE_SLACK > copy_cap) {
		copy_cap = len + 1 + PARSE_SLACK;
		copy = xrealloc(copy, copy_cap);
	}
	memcpy(copy, text, len);
	memset(copy + len, 0, 1 + PARSE_SLACK);
	if (!too_long)
		prc = cmd_parse(copy, len, &p);
	bool blank = !too_long && prc == ERR_OK && p.cmd == NULL;
	const cmd_entry *cmd = !too_long && (prc == ERR_OK) ? p.cmd : NULL;
	error_code want = prc;
	if (prc == ERR_OK && is_write(cmd))
		want = expect_write(&p);
	uint64_t head = m.nevents, checkpoint = sheet_checkpoint(ctx->sheet);
	size_t rows = sheet_count(ctx->sheet);
	uint64_t old_version[2] = { 0, 0 };
	for (int k = 0; cmd && is_write(cmd) && k < (cmd->args[1] == 'a' ? 2 : 1); k++) {
		const stream_model *s = find(p.arg.account[k]);
		old_version[k] = s ? s->version : 0;
	}
	x = (struct expect){ p, prc, want, blank, cmd, head, checkpoint, rows,
			     { old_version[0], old_version[1] } };
}

/* Checks what the session did with the line expect_line saw. */
static cmd_status check_line(session *ses, cmd_status st)
{
	cmd_ctx *ctx = &ses->ctx;
	const cmd_parsed p = x.p;
	const error_code prc = x.prc, want = x.want;
	const bool blank = x.blank;
	const bool too_long = prc == ERR_LINE_TOO_LONG;
	const cmd_entry *cmd = x.cmd;
	const uint64_t head = x.head, checkpoint = x.checkpoint;
	const size_t rows = x.rows;
	const uint64_t *old_version = x.old_version;
	FUZZ_CHECK(st != CMD_FATAL, "the memory store failed");
	FUZZ_CHECK(out_flush(ctx->out), "output failed");

	catch_up(ctx->store);
	size_t n = new_output();
	if (blank || st == CMD_QUIT) {
		FUZZ_CHECK(n == 0, "line %lu printed '%s'", ctx->line, outbuf);
		FUZZ_CHECK(m.nevents == head, "line %lu wrote", ctx->line);
		return st;
	}
	FUZZ_CHECK(n > 0 && outbuf[n - 1] == '\n' && memchr(outbuf, '\n', n) == outbuf + n - 1,
		   "line %lu printed not one line: '%s'", ctx->line, outbuf);
	fuzz_json j;
	FUZZ_CHECK(fuzz_json_line(&j, outbuf, n - 1), "line %lu: invalid JSON: %s",
		   ctx->line, outbuf);
	FUZZ_CHECK(j.nmembers >= 2 && strcmp(j.members[0].key, "ok") == 0 &&
		   strcmp(j.members[1].key, "cmd") == 0, "keys: %s", outbuf);
	const char *name = too_long || prc == ERR_INVALID_INPUT ? "" : p.name;
	check_string(&j.members[1], name, strlen(name), "cmd");
	bool ok = fuzz_json_is(&j.members[0], "true");
	FUZZ_CHECK(ok || fuzz_json_is(&j.members[0], "false"), "ok: %s", outbuf);
	FUZZ_CHECK(ok == (st == CMD_OK), "ok %d but status %d: %s", ok, (int)st, outbuf);

	if (!ok) {
		check_u64(&j, "line", ctx->line);
		const fuzz_member *e = fuzz_json_get(&j, "error");
		const fuzz_member *msg = fuzz_json_get(&j, "message");
		FUZZ_CHECK(msg != NULL, "no message: %s", outbuf);
		unsigned char *text_of_msg = malloc(msg->value_len + 1);
		FUZZ_CHECK(fuzz_json_get_string(msg, text_of_msg, NULL), "message: %s",
			   outbuf);
		free(text_of_msg);
		if (want != ERR_OK) {
			char lit[64];
			snprintf(lit, sizeof lit, "\"%s\"", error_name(want));
			FUZZ_CHECK(fuzz_json_is(e, lit), "line %lu: want %s: %s",
				   ctx->line, lit, outbuf);
		} else {
			FUZZ_CHECK(!is_write(cmd), "line %lu: a write SPEC allows failed: %s",
				   ctx->line, outbuf);
			bool known = false;
			char lit[64];
			for (int c = 1; c < ERR_COUNT && !known; c++) {
				snprintf(lit, sizeof lit, "\"%s\"", error_name((error_code)c));
				known = fuzz_json_is(e, lit);
			}
			FUZZ_CHECK(known, "error: %s", outbuf);
		}
		FUZZ_CHECK(m.nevents == head, "line %lu failed but wrote", ctx->line);
	} else {
		FUZZ_CHECK(want == ERR_OK, "line %lu: want %s, but ok: %s", ctx->line,
			   error_name(want), outbuf);
	}

	/* what a write did to the store */
	if (ok && is_write(cmd)) {
		bool transfer = cmd->args[1] == 'a';
		FUZZ_CHECK(m.nevents == head + (transfer ? 2 : 1), "line %lu: %zu events",
			   ctx->line, m.nevents - head);
		check_u64(&j, "position", m.nevents);
		check_u64(&j, "amount", (uint64_t)p.arg.amount);
		for (int k = 0; k < (transfer ? 2 : 1); k++) {
			const event_model *ev = &m.events[head + (size_t)k];
			const stream_model *s = &m.streams[ev->slot];
			event_type type = strcmp(cmd->name, "deposit") == 0 || k == 1
				? EVENT_CREDITED : EVENT_DEBITED;
			FUZZ_CHECK(strcmp(s->id, p.arg.account[k]) == 0 && ev->type == type &&
				   ev->amount == p.arg.amount && ev->version == old_version[k] + 1,
				   "line %lu: event %d is wrong", ctx->line, k);
			if (!transfer) {
				check_u64(&j, "version", ev->version);
				check_string(fuzz_json_get(&j, "account"), p.arg.account[0],
					     p.arg.account_len[0], "account");
			}
		}
	} else if (!is_write(cmd)) {
		FUZZ_CHECK(m.nevents == head, "line %lu wrote %zu events", ctx->line,
			   m.nevents - head);
	}

	/* the sheet moves only when asked */
	if (ok && is_sheet_write(cmd)) {
		check_sheet(ctx->sheet);
		check_u64(&j, "position", m.nevents);
	} else {
		FUZZ_CHECK(sheet_checkpoint(ctx->sheet) == checkpoint &&
			   sheet_count(ctx->sheet) == rows, "line %lu moved the sheet",
			   ctx->line);
	}
	if (ok && cmd && strcmp(cmd->name, "status") == 0) {
		check_u64(&j, "head", m.nevents);
		check_u64(&j, "streams", m.nstreams);
		check_u64(&j, "checkpoint", checkpoint);
		check_u64(&j, "behind", m.nevents - checkpoint);
	}
	if (ok && cmd && strcmp(cmd->name, "balance") == 0) {
		int64_t b;
		FUZZ_CHECK(sheet_balance(ctx->sheet, p.arg.account[0], &b), "balance of nothing");
		check_u64(&j, "balance", (uint64_t)b);
		check_u64(&j, "position", checkpoint);
	}
	if (ok && cmd && strcmp(cmd->name, "balances") == 0) {
		check_u64(&j, "position", checkpoint);
		check_u64(&j, "behind", m.nevents - checkpoint);
	}
	if (ok && cmd && strcmp(cmd->name, "history") == 0) {
		const stream_model *s = find(p.arg.account[0]);
		FUZZ_CHECK(s != NULL, "history of nothing");
	}
	return st;
}

/* ---- the whole input ---- */

/* The input's lines by a plain split on LF, for lines.c to agree with. */
typedef struct split {
	const char *p, *end;
} split;

static bool split_next(split *sp, const char **text, size_t *len, bool *too_long)
{
	if (sp->p >= sp->end)
		return false;
	const char *nl = memchr(sp->p, '\n', (size_t)(sp->end - sp->p));
	const char *e = nl ? nl : sp->end;
	*text = sp->p;
	*len = (size_t)(e - sp->p);
	/* lines.c keeps the limit plus one byte, for a CR */
	*too_long = *len > PARSE_MAX_LINE + 1;
	sp->p = nl ? nl + 1 : sp->end;
	return true;
}

static cmd_status statuses[MAX_LINES + 2];

static int check_stream(void *ctx, const store_event *ev);

/* One pass over the input, as session_run_fd reads it. */
typedef struct pass {
	split sp;		/* the same lines by a plain split */
	bool json;
	int nlines;		/* lines run */
} pass;

/* Before each line: lines.c agrees with the split, and in JSON mode the
 * expectation is worked out; past MAX_LINES the run stops. */
static void before_line(void *vp, session *ses, const char *l_text, size_t l_len,
			bool l_too_long)
{
	pass *ps = vp;
	if (ps->nlines >= MAX_LINES) {
		ses->stop = true;
		return;
	}
	const char *text;
	size_t len;
	bool too_long;
	FUZZ_CHECK(split_next(&ps->sp, &text, &len, &too_long),
		   "lines.c gave an extra line %d", ps->nlines + 1);
	FUZZ_CHECK(l_too_long == too_long, "line %d: too_long %d", ps->nlines + 1,
		   l_too_long);
	FUZZ_CHECK(too_long || (l_len == len && memcmp(l_text, text, len) == 0),
		   "line %d: lines.c gave other bytes", ps->nlines + 1);
	if (ps->json)
		expect_line(ses, l_text, l_len, l_too_long);
}

/* After each line: in JSON mode everything check_line checks; in text
 * mode the same outcome as JSON mode gave. */
static void after_line(void *vp, session *ses, cmd_status st)
{
	pass *ps = vp;
	if (ps->json)
		check_line(ses, st);
	else
		FUZZ_CHECK(st == statuses[ps->nlines], "line %d: text mode %d, JSON %d",
			   ps->nlines + 1, (int)st, (int)statuses[ps->nlines]);
	statuses[ps->nlines++] = st;
}

/* A line of the fuzzer's own, through the same steps. */
static cmd_status run_own(session *ses, char *text, size_t len)
{
	expect_line(ses, text, len, false);
	return check_line(ses, session_run_line(ses, text, len, false));
}

/* Runs the input on a fresh memory store; json picks the mode. */
static void run(const uint8_t *data, size_t size, bool json)
{
	reset_file(in_fd);
	FUZZ_CHECK(pwrite(in_fd, data, size, 0) == (ssize_t)size, "pwrite");
	reset_file(out_fd);
	out_seen = 0;
	model_reset();

	store *st;
	char why[256];
	FUZZ_CHECK(store_open("memory", &st, why, sizeof why) == ERR_OK, "%s", why);
	out_opts oo = { .json = json, .out_fd = out_fd, .err_fd = out_fd };
	session ses;
	session_open(&ses, st, &oo);
	handler_set_clock(ses.ctx.handler, fixed_clock);
	cmd_ctx ctx = ses.ctx;	/* (the same store, handler, sheet, output) */

	/* the shell's own loop, watched line by line */
	pass ps = { { (const char *)data, (const char *)data + size }, json, 0 };
	session_watch watch = { before_line, after_line, &ps };
	ses.watch = &watch;
	FUZZ_CHECK(session_run_fd(&ses, in_fd) == 0, "session_run_fd failed");
	ses.watch = NULL;
	int nlines = ps.nlines;
	if (nlines < MAX_LINES && (nlines == 0 || statuses[nlines - 1] != CMD_QUIT)) {
		const char *text;
		size_t len;
		bool too_long;
		FUZZ_CHECK(!split_next(&ps.sp, &text, &len, &too_long),
			   "lines.c stopped before line %d", nlines + 1);
	}
	ses.stop = false;	/* quit ends the script, not this check */

	if (json) {
		/* a refresh and a rebuild at the end: the sheet is the replay */
		char refresh[8 + 1 + PARSE_SLACK] = "refresh";
		FUZZ_CHECK(run_own(&ses, refresh, 7) == CMD_OK, "refresh");
		check_sheet(ctx.sheet);
		char rebuild[8 + 1 + PARSE_SLACK] = "rebuild";
		FUZZ_CHECK(run_own(&ses, rebuild, 7) == CMD_OK, "rebuild");
		check_sheet(ctx.sheet);

		/* each stream read on its own agrees with the global order */
		for (size_t i = 0; i < SLOTS; i++) {
			stream_model *s = &m.streams[i];
			if (s->id == NULL)
				continue;
			uint64_t after = s->version / 2;
			s->seen = after;
			FUZZ_CHECK(store_read_stream(st, s->id, after, check_stream, s) == ERR_OK,
				   "read_stream");
			FUZZ_CHECK(s->seen == s->version, "%s: read %llu of %llu", s->id,
				   (unsigned long long)s->seen,
				   (unsigned long long)s->version);
		}
	} else {
		out_flush(ctx.out);
		size_t n = new_output();
		/* text mode escapes what it echoes: no control byte, C0 or C1
		 * (U+0080..U+009F), and valid UTF-8 */
		const unsigned char *u = (const unsigned char *)outbuf;
		for (size_t i = 0; i < n;) {
			size_t len = fuzz_utf8_len(u + i, n - i);
			FUZZ_CHECK(len > 0, "text output: invalid UTF-8 at %zu", i);
			uint32_t cp = fuzz_utf8_cp(u + i, len);
			FUZZ_CHECK(fuzz_text_ok(cp), "text output: control U+%04X at byte %zu",
				   (unsigned)cp, i);
			i += len;
		}
	}

	FUZZ_CHECK(session_close(&ses) == 0, "output failed");
	store_free(st);
}

/* store_read_stream's callback: ctx is the stream's model. */
static int check_stream(void *ctx, const store_event *ev)
{
	stream_model *s = ctx;
	FUZZ_CHECK(strcmp(ev->stream, s->id) == 0, "stream %s read %s", s->id, ev->stream);
	FUZZ_CHECK(ev->version == s->seen + 1, "%s: version %llu after %llu", s->id,
		   (unsigned long long)ev->version, (unsigned long long)s->seen);
	FUZZ_CHECK(ev->position >= 1 && ev->position <= m.nevents, "position");
	const event_model *e = &m.events[ev->position - 1];
	FUZZ_CHECK(&m.streams[e->slot] == s && e->version == ev->version &&
		   e->type == ev->type && e->amount == ev->amount,
		   "%s v%llu differs from position %llu", s->id,
		   (unsigned long long)ev->version, (unsigned long long)ev->position);
	s->seen++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (out_fd < 0) {
		out_fd = tmp_fd();
		in_fd = tmp_fd();
	}
	run(data, size, true);
	run(data, size, false);
	model_reset();
	return 0;
}
