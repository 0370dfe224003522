/* fuzz_store.c — the input is what a store hands back: a tiny backend
 * (through store_impl.h's ops, as sqlite and postgresql are) serves events
 * and kept balance rows decoded from it, with any ids, types, amounts,
 * versions, positions, stream keys and times, and may ignore what it was
 * asked (another stream's events, past the limit, before the position).
 * Then the sheet (refresh, rebuild, a kept sheet), the handler (deposit,
 * withdraw, transfer on the served streams) and every renderer (JSON, text
 * at a terminal's width with UTF-8 and ASCII pictures, and piped) run on it.
 *
 * Checked: no crash or sanitizer report; a command that fails the store
 * says `storage` (the shell would stop there; here every command runs, so
 * that each renderer meets the data); JSON mode prints one
 * valid JSON line per command and never a balance or amount out of range;
 * text mode prints valid UTF-8 and no control character; completion's list
 * of streams holds only ids; after a refresh
 * or rebuild that worked, every row of the sheet is a valid id
 * with a balance in 0..INT64_MAX.
 *
 * The input: a flags byte, then records (a tag byte, then its fields; a
 * field past the end reads as 0):
 *   0 LEN BYTES...   a name (any bytes) for the records after it
 *   1 NAME TYPE AMOUNT VERSION POSITION KEY   an event
 *   2 NAME BALANCE   a kept balance row
 *   3 CHECKPOINT     the kept checkpoint
 * AMOUNT and BALANCE: a byte below 0x80 is that less 0x40, else 8 bytes
 * follow. VERSION and POSITION: 0 is "the next one", else the byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "simplecqrs/cmd.h"
#include "simplecqrs/session.h"
#include "simplecqrs/parse.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"
#include "fuzz.h"

#define MAX_NAMES 8
#define MAX_EVENTS 96
#define MAX_ROWS 16

enum {
	KEEPS_SHEET = 1,	/* the store keeps a balance sheet */
	LIE_STREAM = 2,		/* read_stream serves every stream's events */
	LIE_ALL = 4,		/* read_all ignores after and limit */
	KEYS = 8,		/* events carry the input's stream keys */
};

typedef struct fz_event {
	char *stream;
	store_event ev;
} fz_event;

typedef struct fz_row {
	char *account;
	int64_t balance;
} fz_row;

typedef struct fz_store {
	struct store base;
	unsigned flags;
	fz_event events[MAX_EVENTS + 64];	/* room for the appends */
	size_t nevents;
	fz_row rows[MAX_ROWS + 64];
	size_t nrows;
	uint64_t checkpoint;
} fz_store;

/* ---- the backend ---- */

static void fz_free(store *s)
{
	fz_store *f = (fz_store *)s;
	for (size_t i = 0; i < f->nevents; i++)
		free(f->events[i].stream);
	for (size_t i = 0; i < f->nrows; i++)
		free(f->rows[i].account);
	free(f);
}

static uint64_t fz_version_of(const fz_store *f, const char *stream)
{
	uint64_t v = 0;
	for (size_t i = 0; i < f->nevents; i++)
		if (strcmp(f->events[i].stream, stream) == 0 &&
		    f->events[i].ev.version > v)
			v = f->events[i].ev.version;
	return v;
}

static uint64_t fz_last_position(const fz_store *f)
{
	uint64_t p = 0;
	for (size_t i = 0; i < f->nevents; i++)
		if (f->events[i].ev.position > p)
			p = f->events[i].ev.position;
	return p;
}

static error_code fz_append(store *s, const store_new_event *evs, size_t n,
			    int64_t time_ms, uint64_t *last_position)
{
	fz_store *f = (fz_store *)s;
	if (f->nevents + n > sizeof f->events / sizeof f->events[0])
		return store_base_fail(s, "the fuzz store is full");
	for (size_t i = 0; i < n; i++)
		if (fz_version_of(f, evs[i].stream) != evs[i].expected_version)
			return ERR_CONFLICT;
	uint64_t pos = fz_last_position(f);
	for (size_t i = 0; i < n; i++) {
		fz_event *e = &f->events[f->nevents++];
		e->stream = xstrdup(evs[i].stream);
		e->ev = (store_event){
			.position = ++pos, .version = evs[i].expected_version + 1,
			.type = evs[i].type, .amount = evs[i].amount,
			.time_ms = time_ms,
		};
	}
	*last_position = pos;
	return ERR_OK;
}

static error_code serve(fz_store *f, size_t i, store_event_fn fn, void *ctx,
			bool *stop)
{
	store_event ev = f->events[i].ev;
	ev.stream = f->events[i].stream;
	*stop = fn(ctx, &ev) != 0;
	return ERR_OK;
}

static error_code fz_read_stream(store *s, const char *stream,
				 uint64_t after_version, store_event_fn fn,
				 void *ctx)
{
	fz_store *f = (fz_store *)s;
	bool stop = false;
	for (size_t i = 0; i < f->nevents && !stop; i++)
		if ((f->flags & LIE_STREAM) ||
		    (strcmp(f->events[i].stream, stream) == 0 &&
		     f->events[i].ev.version > after_version))
			serve(f, i, fn, ctx, &stop);
	return ERR_OK;
}

static error_code fz_read_all(store *s, uint64_t after, size_t limit,
			      store_event_fn fn, void *ctx)
{
	fz_store *f = (fz_store *)s;
	bool stop = false;
	size_t served = 0;
	for (size_t i = 0; i < f->nevents && !stop; i++) {
		if (!(f->flags & LIE_ALL) &&
		    (f->events[i].ev.position <= after || served == limit))
			continue;
		served++;
		serve(f, i, fn, ctx, &stop);
	}
	return ERR_OK;
}

static error_code fz_head(store *s, uint64_t *head)
{
	*head = fz_last_position((fz_store *)s);
	return ERR_OK;
}

static error_code fz_stream_count(store *s, uint64_t *count)
{
	*count = ((fz_store *)s)->nevents;
	return ERR_OK;
}

static error_code fz_streams(store *s, const char *prefix, store_stream_fn fn,
			     void *ctx)
{
	fz_store *f = (fz_store *)s;
	for (size_t i = 0; i < f->nevents; i++)
		if (strncmp(f->events[i].stream, prefix, strlen(prefix)) == 0 &&
		    fn(ctx, f->events[i].stream))
			break;
	return ERR_OK;
}

static error_code fz_sheet_checkpoint(store *s, uint64_t *checkpoint)
{
	*checkpoint = ((fz_store *)s)->checkpoint;
	return ERR_OK;
}

static error_code fz_sheet_load(store *s, uint64_t *checkpoint,
				sheet_store_row_fn fn, void *ctx)
{
	fz_store *f = (fz_store *)s;
	*checkpoint = f->checkpoint;
	for (size_t i = 0; i < f->nrows; i++)
		if (fn(ctx, f->rows[i].account, f->rows[i].balance))
			break;
	return ERR_OK;
}

static error_code fz_sheet_save(store *s, uint64_t from, uint64_t to,
				const sheet_store_row *rows, size_t n, bool replace)
{
	fz_store *f = (fz_store *)s;
	if (f->checkpoint != from)
		return ERR_CONFLICT;
	for (const sheet_store_row *r = rows; r < rows + n; r++) {
		FUZZ_CHECK(parse_account(r->account) && r->balance >= 0,
			   "the sheet saves '%s' at %lld", r->account,
			   (long long)r->balance);
	}
	if (replace) {
		for (size_t i = 0; i < f->nrows; i++)
			free(f->rows[i].account);
		f->nrows = 0;
	}
	for (size_t k = 0; k < n; k++) {
		size_t i = 0;
		while (i < f->nrows && strcmp(f->rows[i].account, rows[k].account) != 0)
			i++;
		if (i == f->nrows) {
			if (f->nrows == sizeof f->rows / sizeof f->rows[0])
				return store_base_fail(s, "the fuzz sheet is full");
			f->rows[f->nrows++].account = xstrdup(rows[k].account);
		}
		f->rows[i].balance = rows[k].balance;
	}
	f->checkpoint = to;
	return ERR_OK;
}

static const store_ops fz_ops = {
	.kind = "fuzz",
	.free = fz_free,
	.append = fz_append,
	.read_stream = fz_read_stream,
	.read_all = fz_read_all,
	.head = fz_head,
	.stream_count = fz_stream_count,
	.streams = fz_streams,
};

static const sheet_store_ops fz_sheet_ops = {
	.checkpoint = fz_sheet_checkpoint,
	.load = fz_sheet_load,
	.save = fz_sheet_save,
};

static const store_ops fz_ops_sheet = {
	.kind = "fuzz",
	.free = fz_free,
	.append = fz_append,
	.read_stream = fz_read_stream,
	.read_all = fz_read_all,
	.head = fz_head,
	.stream_count = fz_stream_count,
	.streams = fz_streams,
	.sheet = &fz_sheet_ops,
};

/* ---- decoding the input ---- */

typedef struct reader {
	const uint8_t *p, *end;
} reader;

static uint8_t take(reader *r)
{
	return r->p < r->end ? *r->p++ : 0;
}

static int64_t take_number(reader *r)
{
	uint8_t b = take(r);
	if (b < 0x80)
		return (int64_t)b - 0x40;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | take(r);
	return (int64_t)v;
}

/* The store the input describes; names[] gets the ids the commands use. */
static fz_store *decode(const uint8_t *data, size_t size, char **names,
			size_t *nnames)
{
	reader r = { data, data + size };
	fz_store *f = xcalloc(1, sizeof *f);
	f->flags = take(&r);
	f->base.ops = f->flags & KEEPS_SHEET ? &fz_ops_sheet : &fz_ops;
	*nnames = 0;
	uint64_t next_position = 1;
	while (r.p < r.end) {
		switch (take(&r) % 4) {
		case 0: {
			size_t len = take(&r) % 72;
			if (*nnames == MAX_NAMES)
				free(names[--*nnames]);
			char *name = xmalloc(len + 1);
			for (size_t i = 0; i < len; i++)
				name[i] = (char)take(&r);
			name[len] = '\0';
			names[(*nnames)++] = name;
			break;
		}
		case 1: {
			uint8_t who = take(&r);
			const char *stream = *nnames ? names[who % *nnames] : "XX1";
			uint8_t type = take(&r);
			int64_t amount = take_number(&r);
			uint8_t version = take(&r), position = take(&r), key = take(&r);
			if (f->nevents == MAX_EVENTS)
				break;
			fz_event *e = &f->events[f->nevents++];
			e->stream = xstrdup(stream);
			e->ev = (store_event){
				.position = position ? position : next_position,
				.version = version ? version
						   : fz_version_of(f, stream) + 1,
				.stream_key = f->flags & KEYS ? key : 0,
				.type = (event_type)(type % 8 < 6 ? 1 + type % 2
								  : type),
				.amount = amount,
				.time_ms = (int64_t)((uint64_t)type << 56 ^
						     (uint64_t)amount),
			};
			next_position = e->ev.position + 1;
			break;
		}
		case 2: {
			uint8_t who = take(&r);
			int64_t balance = take_number(&r);
			if (f->nrows == MAX_ROWS)
				break;
			f->rows[f->nrows].account = xstrdup(*nnames ? names[who % *nnames]
								    : "XX1");
			f->rows[f->nrows++].balance = balance;
			break;
		}
		default:
			f->checkpoint = take(&r);
			break;
		}
	}
	return f;
}

/* ---- running commands ---- */

static int out_fd = -1;
static char *outbuf;
static size_t outcap;

static size_t take_output(void)
{
	off_t end = lseek(out_fd, 0, SEEK_END);
	size_t n = (size_t)end;
	if (n + 1 > outcap) {
		outcap = n + 1;
		outbuf = xrealloc(outbuf, outcap);
	}
	FUZZ_CHECK(pread(out_fd, outbuf, n, 0) == (ssize_t)n, "pread");
	outbuf[n] = '\0';
	FUZZ_CHECK(ftruncate(out_fd, 0) == 0 && lseek(out_fd, 0, SEEK_SET) == 0,
		   "reset");
	return n;
}

/* Every number after "key": in the line is in 0..INT64_MAX. */
static void check_numbers(const char *line, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
		const char *v = p + klen;
		FUZZ_CHECK(*v >= '0' && *v <= '9', "%s%.24s in %s", key, v, line);
		uint64_t x = 0;
		for (; *v >= '0' && *v <= '9'; v++)
			FUZZ_CHECK(!__builtin_mul_overflow(x, 10, &x) &&
				   !__builtin_add_overflow(x, (uint64_t)(*v - '0'), &x),
				   "%s too long in %s", key, line);
		FUZZ_CHECK(x <= INT64_MAX, "%s%llu", key, (unsigned long long)x);
	}
}

/* One command's output, line[0..n) and its LF, which must be all of it. */
static void check_json(const char *cmd, char *line, size_t n, cmd_status st)
{
	fuzz_json j;
	FUZZ_CHECK(fuzz_json_line(&j, line, n), "%s: invalid JSON: %.*s", cmd,
		   (int)n, line);
	line[n] = '\0';	/* for the string searches below; was the LF */
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)line[i] >= 0x20, "raw control in JSON: %s",
			   line);
	FUZZ_CHECK(!strstr(line, "\xc2\x80") && !strstr(line, "\xc2\x9b"),
		   "raw C1 in JSON: %s", line);
	bool ok = fuzz_json_is(fuzz_json_get(&j, "ok"), "true");
	FUZZ_CHECK(ok == (st == CMD_OK), "%s: ok %d, status %d: %s", cmd, ok,
		   (int)st, line);
	if (st == CMD_FATAL)
		FUZZ_CHECK(fuzz_json_is(fuzz_json_get(&j, "error"), "\"storage\""),
			   "fatal but not storage: %s", line);
	check_numbers(line, "\"balance\":");
	check_numbers(line, "\"amount\":");
}

static void check_text(size_t n)
{
	const unsigned char *u = (const unsigned char *)outbuf;
	for (size_t i = 0; i < n;) {
		size_t len = fuzz_utf8_len(u + i, n - i);
		FUZZ_CHECK(len > 0, "text output: invalid UTF-8 at %zu: %s", i, outbuf);
		uint32_t cp = fuzz_utf8_cp(u + i, len);
		FUZZ_CHECK(fuzz_text_ok(cp), "text output: control U+%04X at byte %zu: %s",
			   (unsigned)cp, i, outbuf);
		i += len;
	}
}

static void check_sheet_rows(const sheet *sh)
{
	size_t n;
	sheet_row *rows = sheet_sorted(sh, &n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(parse_account(rows[i].account) && rows[i].balance >= 0,
			   "sheet row '%s' at %lld", rows[i].account,
			   (long long)rows[i].balance);
	free(rows);
}

/* Completion shows what store_streams lists: ids only. */
static int listed(void *ctx, const char *stream)
{
	(void)ctx;
	FUZZ_CHECK(parse_account(stream), "store_streams listed '%s'", stream);
	return 0;
}

static int64_t fixed_clock(void)
{
	return INT64_C(1795813384123);
}

/* One run of the commands on a fresh copy of the store the input gives,
 * in one of the output modes. */
static void run(const uint8_t *data, size_t size, int mode)
{
	char *names[MAX_NAMES];
	size_t nnames;
	fz_store *f = decode(data, size, names, &nnames);
	store *st = &f->base;
	out_opts oo = { .out_fd = out_fd, .err_fd = out_fd };
	if (mode == 0)
		oo.json = true;
	else if (mode == 1)
		oo.width = 72, oo.utf8 = true;	/* a terminal: bars, sparkline */
	else if (mode == 2)
		oo.width = 30;			/* a narrow ASCII terminal */
	session ses;
	session_open(&ses, st, &oo);
	handler_set_clock(ses.ctx.handler, fixed_clock);

	/* the commands: each served id's history first (the store's events
	 * as they are), then the sheet, then writes on each id */
	char lines[8 + MAX_NAMES * 5][160];
	size_t nlines = 0;
	for (size_t i = 0; i < nnames; i++)
		snprintf(lines[nlines++], sizeof lines[0], "history %s",
			 parse_account(names[i]) ? names[i] : "XX1");
	static const char *const fixed[] = { "balances", "status", "refresh",
					     "balances", "rebuild", "balances" };
	for (size_t i = 0; i < 6; i++)
		snprintf(lines[nlines++], sizeof lines[0], "%s", fixed[i]);
	for (size_t i = 0; i < nnames; i++) {
		const char *id = parse_account(names[i]) ? names[i] : "XX1";
		snprintf(lines[nlines++], sizeof lines[0], "balance %s", id);
		snprintf(lines[nlines++], sizeof lines[0], "withdraw %s 7", id);
		snprintf(lines[nlines++], sizeof lines[0], "transfer %s ZZ9 1", id);
		snprintf(lines[nlines++], sizeof lines[0], "deposit %s 9223372036854775807", id);
	}
	snprintf(lines[nlines++], sizeof lines[0], "refresh");
	snprintf(lines[nlines++], sizeof lines[0], "balances");

	/* output is checked once at the end (a flush per command was most of
	 * the time): JSON line by line against each command's status */
	cmd_status status[sizeof lines / sizeof lines[0]];
	for (size_t i = 0; i < nlines; i++) {
		char line[160 + 1 + PARSE_SLACK] = { 0 };
		size_t len = strlen(lines[i]);
		memcpy(line, lines[i], len);
		cmd_status s = session_run_line(&ses, line, len, false);
		/* past a damaged store's failure the shell would stop; this
		 * goes on, to try every command on it */
		ses.stop = false;
		status[i] = s;
		if (s == CMD_OK && (strcmp(lines[i], "refresh") == 0 ||
				    strcmp(lines[i], "rebuild") == 0))
			check_sheet_rows(ses.ctx.sheet);
	}
	FUZZ_CHECK(store_streams(st, "", listed, NULL) == ERR_OK, "streams");
	FUZZ_CHECK(out_flush(ses.ctx.out), "output failed");
	size_t n = take_output();
	if (oo.json) {
		char *p = outbuf, *end = outbuf + n;
		for (size_t i = 0; i < nlines; i++) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			FUZZ_CHECK(nl != NULL, "%s printed no line", lines[i]);
			check_json(lines[i], p, (size_t)(nl - p), status[i]);
			p = nl + 1;
		}
		FUZZ_CHECK(p == end, "more lines than commands: %s", p);
	} else {
		check_text(n);
	}

	session_close(&ses);
	take_output();
	store_free(st);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (out_fd < 0) {
		FILE *t = tmpfile();	/* kept open for the process's life */
		FUZZ_CHECK(t != NULL, "tmpfile");
		out_fd = fileno(t);
	}
	if (size > 4096)
		return 0;
	for (int mode = 0; mode < 4; mode++)
		run(data, size, mode);
	return 0;
}
