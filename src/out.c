/* out.c — rendering results as text for people or as JSON lines.
 *
 * Results and errors are buffered and written in 1 MiB blocks and at
 * out_flush() (the shell flushes before it waits for input). When stdout and
 * stderr are one file (2>&1, one pipe, one terminal), errors go into the
 * stdout buffer, so the two keep their order at no extra cost; when they are
 * different files, their relative order cannot be seen, and each has its own
 * buffer. A descriptor someone else left non-blocking is waited on, never
 * given up on. Text mode never echoes a control character from the input raw. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "simplecqrs/account.h"
#include "simplecqrs/buf.h"
#include "simplecqrs/json.h"
#include "simplecqrs/out.h"
#include "simplecqrs/parse.h"
#include "simplecqrs/xmalloc.h"

#define FLUSH_AT (1024 * 1024)

/* Copies a string literal to p and moves p past it; its length is known
 * when compiling, so nobody counts characters by hand. */
#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) += sizeof(lit) - 1)

#define RED "\033[31m"
#define YELLOW "\033[33m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

struct out {
	out_opts opts;
	buf b;			/* pending stdout */
	buf e;			/* pending stderr, unless it shares stdout's file */
	buf *errors;		/* where text-mode errors go: &b or &e */
	int err;		/* errno of the first failed write, or 0 */
	bool out_dead, err_dead;	/* that fd failed: write no more to it */
	bool (*gate)(void *ctx);	/* may the buffers go out? */
	void *gate_ctx;
	bool held;		/* the gate said no: drop all until out_release */
	const char *file;	/* the script being run, for errors; or NULL */
};

static bool same_file(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

out *out_new(const out_opts *opts)
{
	out *o = xcalloc(1, sizeof *o);
	o->opts = *opts;
	o->errors = same_file(opts->out_fd, opts->err_fd) ? &o->b : &o->e;
	return o;
}

/* A descriptor may be non-blocking though we did not ask (inherited from
 * node, or a pipe shared with one): a full pipe then says EAGAIN, which
 * means "wait", not "fail". The flag belongs to the file description that
 * others share, so it is waited out, not cleared. */
static bool wait_writable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			return false;
	return true;	/* ready, or an error the next write reports */
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    wait_writable(fd))
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Writes one buffer to its fd unless that fd already failed; a failure
 * of one does not silence the other. */
static void drain(out *o, buf *b, int fd, bool *dead)
{
	if (b->len > 0 && !*dead && !write_all(fd, b->data, b->len)) {
		*dead = true;
		if (o->err == 0)
			o->err = errno;
	}
	b->len = 0;
}

void out_set_gate(out *o, bool (*gate)(void *ctx), void *ctx)
{
	o->gate = gate;
	o->gate_ctx = ctx;
}

void out_release(out *o)
{
	o->b.len = 0;
	o->e.len = 0;
	o->held = false;
}

bool out_held(const out *o)
{
	return o->held;
}

bool out_flush(out *o)
{
	/* Once the gate has said no, the rest of the command that was being
	 * written (half a JSON line, the rest of a table) must not follow. */
	if (o->held || (o->gate && !o->gate(o->gate_ctx))) {
		o->b.len = 0;
		o->e.len = 0;
		o->held = true;
		return o->err == 0;
	}
	drain(o, &o->b, o->opts.out_fd, &o->out_dead);
	drain(o, &o->e, o->opts.err_fd, &o->err_dead);
	errno = o->err;
	return o->err == 0;
}

void out_set_input(out *o, const char *file, bool interactive)
{
	o->file = file;
	o->opts.interactive = interactive;
}

int out_write_error(const out *o)
{
	return o->err;
}

void out_set_width(out *o, int width)
{
	o->opts.width = width;
}

void out_free(out *o)
{
	if (o == NULL)
		return;
	out_flush(o);
	buf_free(&o->b);
	buf_free(&o->e);
	free(o);
}

/* Ends a result line: the buffers go out when they are large. */
static void end_line(out *o)
{
	buf_putc(&o->b, '\n');
	if (o->b.len >= FLUSH_AT || o->e.len >= FLUSH_AT)
		out_flush(o);
}

void out_put_safe(buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t plain = 0;	/* the usual message is all plain: one copy */
	while (plain < n && u[plain] >= 0x20 && u[plain] < 0x7f && u[plain] != '\\')
		plain++;
	buf_put(b, s, plain);
	for (size_t i = plain; i < n;) {
		if ((u[i] >= 0x20 && u[i] < 0x7f && u[i] != '\\') || u[i] == '\t') {
			buf_putc(b, (char)u[i++]);
			continue;
		}
		size_t len = u[i] >= 0x80 ? json_utf8_len(u + i, n - i) : 0;
		/* U+0080..U+009F are controls too (U+009B starts an escape
		 * sequence on terminals that take C1): both bytes as \xNN */
		bool c1 = len == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0;
		if (len > 0 && !c1) {
			buf_put(b, u + i, len);
			i += len;
		} else if (u[i] == '\\') {
			buf_puts(b, "\\\\");
			i++;
		} else {
			for (size_t end = i + (c1 ? 2 : 1); i < end; i++) {
				char esc[4] = { '\\', 'x', hex[u[i] >> 4],
						hex[u[i] & 15] };
				buf_put(b, esc, 4);
			}
		}
	}
}

static void color(out *o, bool on, const char *code)
{
	if (on)
		buf_puts(&o->b, code);
}

/* ---- JSON pieces ---- */

static void json_begin(out *o, bool ok, const char *cmd)
{
	buf_puts(&o->b, ok ? "{\"ok\":true,\"cmd\":" : "{\"ok\":false,\"cmd\":");
	json_put_cstring(&o->b, cmd);
}

static void json_key(out *o, const char *key)
{
	buf_putc(&o->b, ',');
	buf_putc(&o->b, '"');
	buf_puts(&o->b, key);
	buf_puts(&o->b, "\":");
}

static void json_u64(out *o, const char *key, uint64_t v)
{
	json_key(o, key);
	buf_put_u64(&o->b, v);
}

static void json_i64(out *o, const char *key, int64_t v)
{
	json_key(o, key);
	buf_put_i64(&o->b, v);
}

static void json_str(out *o, const char *key, const char *v)
{
	json_key(o, key);
	json_put_cstring(&o->b, v);
}

static void json_end(out *o)
{
	buf_putc(&o->b, '}');
	end_line(o);
}

/* ---- errors and echo ---- */

void out_echo(out *o, const char *line, size_t len)
{
	if (o->opts.json)
		return;
	out_put_safe(&o->b, line, len);
	end_line(o);
}

void out_error_msg(out *o, unsigned long line, const char *cmd,
		   error_code code, const char *msg, size_t len)
{
	if (o->opts.json) {
		json_begin(o, false, cmd);
		if (o->file)
			json_str(o, "file", o->file);
		json_u64(o, "line", line);
		json_str(o, "error", error_name(code));
		json_key(o, "message");
		json_put_string(&o->b, msg, len);
		json_end(o);
		return;
	}
	buf *e = o->errors;
	bool c = o->opts.color_err;
	if (c)
		buf_puts(e, BOLD RED);
	buf_puts(e, "error:");
	if (c)
		buf_puts(e, RESET);
	if (!o->opts.interactive && (o->file || line > 0)) {
		buf_putc(e, ' ');
		if (o->file)	/* a name can hold anything a file name can */
			out_put_safe(e, o->file, strlen(o->file));
		if (o->file && line > 0)
			buf_putc(e, ':');
		if (line > 0)
			buf_put_u64(e, line);
		buf_putc(e, ':');
	}
	buf_putc(e, ' ');
	out_put_safe(e, msg, len);
	buf_putc(e, '\n');
	if (e->len >= FLUSH_AT)
		out_flush(o);
}

void out_error(out *o, unsigned long line, const char *cmd, error_code code,
	       const char *fmt, ...)
{
	char small[256], *msg = small;	/* most messages fit: one format */
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof small) {
		msg = xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	out_error_msg(o, line, cmd, code, msg, (size_t)n);
	if (msg != small)
		free(msg);
}

/* ---- writes ---- */

/* The words of a deposit's or a withdrawal's line. Each is kept in 16 bytes
 * so it is copied as one fixed-size block (two stores, no call) and the
 * line then moves on by its real length. */
typedef struct write_words {
	char cmd[16], verb[16], prep[16];
	unsigned char lc, lv, lp;
} write_words;

static const write_words deposit_words = {
	"deposit", "deposited", "into", 7, 9, 4
};
static const write_words withdraw_words = {
	"withdraw", "withdrew", "from", 8, 8, 4
};

/* deposit and withdraw print the same shape: "deposited 5 into A (…)".
 * The commonest lines of all: one reservation, then plain stores (account
 * ids are at most 64 bytes, numbers 20). */
static void put_write(out *o, const write_words *w, const char *account,
		      size_t la, int64_t amount, const handler_result *res)
{
	if (o->opts.json) {
		/* checked ids are A-Z a-z 0-9 _ - . : nothing to escape */
		buf_reserve(&o->b, la + 192);
		char *p = o->b.data + o->b.len;
		PUT_LIT(p, "{\"ok\":true,\"cmd\":\"");
		memcpy(p, w->cmd, sizeof w->cmd);
		p += w->lc;
		PUT_LIT(p, "\",\"account\":\"");
		memcpy(p, account, la);
		p += la;
		PUT_LIT(p, "\",\"amount\":");
		p += buf_fmt_u64(p, (uint64_t)amount);
		PUT_LIT(p, ",\"version\":");
		p += buf_fmt_u64(p, res->version);
		PUT_LIT(p, ",\"position\":");
		p += buf_fmt_u64(p, res->position);
		*p++ = '}';
		o->b.len = (size_t)(p - o->b.data);
		end_line(o);
	} else if (!o->opts.quiet) {
		buf_reserve(&o->b, la + 160);
		char *p = o->b.data + o->b.len;
		memcpy(p, w->verb, sizeof w->verb);
		p += w->lv;
		*p++ = ' ';
		p += buf_fmt_u64(p, (uint64_t)amount);
		*p++ = ' ';
		memcpy(p, w->prep, sizeof w->prep);
		p += w->lp;
		*p++ = ' ';
		memcpy(p, account, la);
		p += la;
		PUT_LIT(p, " (version ");
		p += buf_fmt_u64(p, res->version);
		PUT_LIT(p, ", position ");
		p += buf_fmt_u64(p, res->position);
		*p++ = ')';
		o->b.len = (size_t)(p - o->b.data);
		end_line(o);
	}
}

void out_deposit(out *o, const char *account, size_t account_len,
		 int64_t amount, const handler_result *res)
{
	put_write(o, &deposit_words, account, account_len, amount, res);
}

void out_withdraw(out *o, const char *account, size_t account_len,
		  int64_t amount, const handler_result *res)
{
	put_write(o, &withdraw_words, account, account_len, amount, res);
}

void out_transfer(out *o, const char *from, const char *to, int64_t amount,
		  const handler_result *res)
{
	if (o->opts.json) {
		json_begin(o, true, "transfer");
		json_str(o, "from", from);
		json_str(o, "to", to);
		json_i64(o, "amount", amount);
		json_u64(o, "position", res->position);
		json_end(o);
	} else if (!o->opts.quiet) {
		buf_puts(&o->b, "transferred ");
		buf_put_i64(&o->b, amount);
		buf_puts(&o->b, " from ");
		buf_puts(&o->b, from);
		buf_puts(&o->b, " to ");
		buf_puts(&o->b, to);
		buf_puts(&o->b, " (position ");
		buf_put_u64(&o->b, res->position);
		buf_putc(&o->b, ')');
		end_line(o);
	}
}

/* ---- queries ---- */

void out_refresh(out *o, bool rebuild, uint64_t applied, uint64_t position)
{
	if (o->opts.json) {
		json_begin(o, true, rebuild ? "rebuild" : "refresh");
		json_u64(o, "applied", applied);
		json_u64(o, "position", position);
		json_end(o);
		return;
	}
	/* a refresh after every command is a workload of its own: one
	 * reservation, literals and two numbers */
	buf_reserve(&o->b, 96);
	char *p = o->b.data + o->b.len;
	if (rebuild)
		PUT_LIT(p, "rebuilt: ");
	else
		PUT_LIT(p, "refreshed: ");
	p += buf_fmt_u64(p, applied);
	if (applied == 1)
		PUT_LIT(p, " event applied, checkpoint ");
	else
		PUT_LIT(p, " events applied, checkpoint ");
	p += buf_fmt_u64(p, position);
	o->b.len = (size_t)(p - o->b.data);
	end_line(o);
}

/* "checkpoint 3, up to date" or "checkpoint 3, 2 events behind: …" */
static void put_lag(out *o, uint64_t checkpoint, uint64_t behind, bool hint)
{
	buf_puts(&o->b, "checkpoint ");
	buf_put_u64(&o->b, checkpoint);
	if (behind == 0) {
		buf_puts(&o->b, ", up to date");
		return;
	}
	buf_puts(&o->b, ", ");
	color(o, o->opts.color_out, YELLOW);
	buf_put_u64(&o->b, behind);
	buf_puts(&o->b, behind == 1 ? " event behind" : " events behind");
	if (hint)
		buf_puts(&o->b, " (run 'refresh' to catch up)");
	color(o, o->opts.color_out, RESET);
}

/* Pictures are for terminals only (width > 0) and never in JSON. */
static bool pictures(const out *o)
{
	return o->opts.width > 0 && !o->opts.json;
}

/* A bar of v against max, at most width cells, in eighths of a cell on a
 * UTF-8 terminal and in '#' otherwise. Any balance above 0 shows. */
static void put_bar(out *o, int64_t v, int64_t max, size_t width)
{
	static const char *const part[8] = { "", "\u258f", "\u258e", "\u258d",
					     "\u258c", "\u258b", "\u258a", "\u2589" };
	if (max <= 0 || v <= 0 || width == 0)
		return;
	size_t eighths = (size_t)((long double)v / max * width * 8 + 0.5L);
	if (eighths == 0)
		eighths = 1;
	buf_puts(&o->b, "  ");
	if (!o->opts.utf8) {
		size_t cells = (eighths + 4) / 8;
		buf_fill(&o->b, '#', cells ? cells : 1);
		return;
	}
	for (size_t i = 0; i < eighths / 8; i++)
		buf_puts(&o->b, "\u2588");
	buf_puts(&o->b, part[eighths % 8]);
}

/* The running balance after ev. store.c checks that a history's running
 * balance stays in 0..INT64_MAX, so this never clamps; it is here so that
 * no event, however it came, can index past a table or print as 2^64 - x. */
static int64_t run_balance(int64_t balance, const store_event *ev)
{
	int64_t next;
	if (!account_next_balance(balance, ev->type, ev->amount, &next))
		next = ev->type == EVENT_DEBITED ? 0 : INT64_MAX;
	return next;
}

/* The running balance as one line of block heights, the newest points that
 * fit the terminal. */
static void put_sparkline(out *o, const store_event *evs, size_t n)
{
	static const char *const utf8[8] = { "\u2581", "\u2582", "\u2583", "\u2584",
					     "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = "_.,-=+*#";
	size_t room = o->opts.width > 20 ? (size_t)o->opts.width - 10 : 10;
	int64_t *run = xreallocarray(NULL, n, sizeof *run);
	int64_t balance = 0, max = 0;
	for (size_t i = 0; i < n; i++)
		run[i] = balance = run_balance(balance, &evs[i]);
	size_t first = n > room ? n - room : 0;
	for (size_t i = first; i < n; i++)
		if (run[i] > max)
			max = run[i];
	buf_puts(&o->b, "trend    ");
	for (size_t i = first; i < n; i++) {
		int level = max > 0 ? (int)((long double)run[i] / max * 7 + 0.5L) : 0;
		level = level < 0 ? 0 : level > 7 ? 7 : level;
		if (o->opts.utf8)
			buf_puts(&o->b, utf8[level]);
		else
			buf_putc(&o->b, ascii[level]);
	}
	end_line(o);
	free(run);
}

/* An account id from the sheet as shown: store.c lets only valid ids
 * through, and any other byte would still go out as \xNN, never raw. */
static bool id_byte(unsigned char c)
{
	return parse_id_bytes[c];
}

static size_t id_width(const char *id)
{
	size_t w = 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		w += id_byte(*p) ? 1 : 4;
	return w;
}

static void put_id(buf *b, const char *id)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if (id_byte(*p)) {
			buf_putc(b, (char)*p);
		} else {
			char esc[4] = { '\\', 'x', hex[*p >> 4], hex[*p & 15] };
			buf_put(b, esc, 4);
		}
	}
}

static size_t digits_i64(int64_t v)
{
	char tmp[24];
	return buf_fmt_u64(tmp, (uint64_t)v);	/* balances are never negative */
}

void out_balances(out *o, const sheet_row *rows, size_t n, uint64_t checkpoint,
		  uint64_t behind)
{
	if (o->opts.json) {
		json_begin(o, true, "balances");
		json_u64(o, "position", checkpoint);
		json_u64(o, "behind", behind);
		json_key(o, "balances");
		buf_putc(&o->b, '[');
		for (size_t i = 0; i < n; i++) {
			buf_puts(&o->b, i ? ",{\"account\":" : "{\"account\":");
			json_put_cstring(&o->b, rows[i].account);
			buf_puts(&o->b, ",\"balance\":");
			buf_put_i64(&o->b, rows[i].balance);
			buf_putc(&o->b, '}');
			if (o->b.len >= FLUSH_AT)
				out_flush(o);
		}
		buf_putc(&o->b, ']');
		json_end(o);
		return;
	}
	size_t wa = strlen("account"), wb = strlen("balance");
	int64_t max = 0;
	for (size_t i = 0; i < n; i++) {
		size_t la = id_width(rows[i].account), lb = digits_i64(rows[i].balance);
		if (la > wa)
			wa = la;
		if (lb > wb)
			wb = lb;
		if (rows[i].balance > max)
			max = rows[i].balance;
	}
	/* On a terminal one long id would widen every row and push the bars
	 * off: ids are cut to fit, with an ellipsis. Piped, ids stay whole. */
	size_t cut = 0;
	if (pictures(o)) {
		size_t w = (size_t)o->opts.width;
		cut = w > wb + 14 + 32 ? 32 : w > wb + 14 + 12 ? w - wb - 14 : 12;
		if (wa > cut)
			wa = cut;
	}
	size_t bar = 0;	/* cells left for the bars on a terminal */
	if (pictures(o) && (size_t)o->opts.width > wa + wb + 8)
		bar = (size_t)o->opts.width - (wa + wb + 8);
	if (bar > 40)
		bar = 40;
	if (n == 0) {
		buf_puts(&o->b, "no accounts");
		end_line(o);
	} else {
		buf_puts(&o->b, "account");
		buf_fill(&o->b, ' ', wa - strlen("account") + 2 + wb - strlen("balance"));
		buf_puts(&o->b, "balance");
		end_line(o);
		buf_fill(&o->b, '-', wa);
		buf_puts(&o->b, "  ");
		buf_fill(&o->b, '-', wb);
		end_line(o);
	}
	for (size_t i = 0; i < n; i++) {
		/* escaped, the id is ASCII: it can be cut at any byte */
		size_t mark = o->b.len;
		put_id(&o->b, rows[i].account);
		size_t la = o->b.len - mark;
		if (cut && la > cut) {
			o->b.len = mark + cut - (o->opts.utf8 ? 1 : 3);
			buf_puts(&o->b, o->opts.utf8 ? "\u2026" : "...");
			la = cut;
		}
		buf_fill(&o->b, ' ', wa - la + 2 + wb - digits_i64(rows[i].balance));
		buf_put_i64(&o->b, rows[i].balance);
		put_bar(o, rows[i].balance, max, bar);
		end_line(o);
	}
	put_lag(o, checkpoint, behind, true);
	end_line(o);
}

void out_balance(out *o, const char *account, int64_t balance,
		 uint64_t checkpoint, uint64_t behind)
{
	if (o->opts.json) {
		json_begin(o, true, "balance");
		json_str(o, "account", account);
		json_i64(o, "balance", balance);
		json_u64(o, "position", checkpoint);
		json_end(o);
		return;
	}
	buf_puts(&o->b, account);
	buf_puts(&o->b, ": ");
	buf_put_i64(&o->b, balance);
	buf_puts(&o->b, " (");
	put_lag(o, checkpoint, behind, false);
	buf_putc(&o->b, ')');
	end_line(o);
}

/* 2026-11-27T21:03:04.123Z */
static void put_time(buf *b, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	struct tm tm;
	char tmp[64];
	if (gmtime_r(&secs, &tm) == NULL) {
		buf_puts(b, "?");
		return;
	}
	size_t n = strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
	buf_put(b, tmp, n);
	buf_printf(b, ".%03dZ", frac);
}

/* Right-aligns v in a column of width w. */
static void put_col_u64(buf *b, uint64_t v, size_t w)
{
	char tmp[24];
	size_t n = buf_fmt_u64(tmp, v);
	if (n < w)
		buf_fill(b, ' ', w - n);
	buf_put(b, tmp, n);
}

void out_history(out *o, const char *account, const store_event *evs, size_t n)
{
	int64_t balance = 0;
	if (o->opts.json) {
		json_begin(o, true, "history");
		json_str(o, "account", account);
		json_key(o, "events");
		buf_putc(&o->b, '[');
		for (size_t i = 0; i < n; i++) {
			const store_event *e = &evs[i];
			balance = run_balance(balance, e);
			buf_puts(&o->b, i ? ",{\"version\":" : "{\"version\":");
			buf_put_u64(&o->b, e->version);
			json_u64(o, "position", e->position);
			json_str(o, "type", event_type_name(e->type));
			json_i64(o, "amount", e->amount);
			json_i64(o, "balance", balance);
			json_key(o, "time");
			buf_putc(&o->b, '"');
			put_time(&o->b, e->time_ms);
			buf_puts(&o->b, "\"}");
			if (o->b.len >= FLUSH_AT)
				out_flush(o);
		}
		buf_putc(&o->b, ']');
		json_end(o);
		return;
	}
	/* widths: version, position, amount and balance columns */
	size_t wv = 7, wp = 8, wm = 6, wb = 7;
	for (size_t i = 0; i < n; i++) {
		char tmp[24];
		size_t l;
		balance = run_balance(balance, &evs[i]);
		if ((l = buf_fmt_u64(tmp, evs[i].version)) > wv) wv = l;
		if ((l = buf_fmt_u64(tmp, evs[i].position)) > wp) wp = l;
		if ((l = buf_fmt_u64(tmp, (uint64_t)evs[i].amount)) > wm) wm = l;
		if ((l = buf_fmt_u64(tmp, (uint64_t)balance)) > wb) wb = l;
	}
	buf_printf(&o->b, "%*s  %*s  %-15s  %*s  %*s  time", (int)wv, "version",
		   (int)wp, "position", "type", (int)wm, "amount", (int)wb,
		   "balance");
	end_line(o);
	balance = 0;
	for (size_t i = 0; i < n; i++) {
		const store_event *e = &evs[i];
		balance = run_balance(balance, e);
		put_col_u64(&o->b, e->version, wv);
		buf_puts(&o->b, "  ");
		put_col_u64(&o->b, e->position, wp);
		buf_puts(&o->b, "  ");
		buf_puts(&o->b, e->type == EVENT_DEBITED ? "AccountDebited " : "AccountCredited");
		buf_puts(&o->b, "  ");
		put_col_u64(&o->b, (uint64_t)e->amount, wm);
		buf_puts(&o->b, "  ");
		put_col_u64(&o->b, (uint64_t)balance, wb);
		buf_puts(&o->b, "  ");
		put_time(&o->b, e->time_ms);
		end_line(o);
	}
	if (pictures(o))
		put_sparkline(o, evs, n);
	(void)account;
}

void out_status(out *o, const char *kind, const char *location, uint64_t head,
		uint64_t streams, uint64_t checkpoint, uint64_t behind)
{
	if (o->opts.json) {
		json_begin(o, true, "status");
		json_str(o, "store", kind);
		if (location)
			json_str(o, "location", location);
		json_u64(o, "head", head);
		json_u64(o, "streams", streams);
		json_u64(o, "checkpoint", checkpoint);
		json_u64(o, "behind", behind);
		json_end(o);
		return;
	}
	buf_printf(&o->b, "store       %s\n", kind);
	if (location) {	/* a file name may hold any byte */
		buf_puts(&o->b, "location    ");
		out_put_safe(&o->b, location, strlen(location));
		buf_putc(&o->b, '\n');
	}
	buf_printf(&o->b, "head        %llu\n", (unsigned long long)head);
	buf_printf(&o->b, "streams     %llu\n", (unsigned long long)streams);
	buf_printf(&o->b, "checkpoint  %llu\n", (unsigned long long)checkpoint);
	buf_puts(&o->b, "behind      ");
	color(o, o->opts.color_out && behind > 0, YELLOW);
	buf_put_u64(&o->b, behind);
	color(o, o->opts.color_out && behind > 0, RESET);
	end_line(o);
}

void out_backup(out *o, const char *path, uint64_t events)
{
	if (o->opts.json) {
		json_begin(o, true, "backup");
		json_str(o, "path", path);
		json_u64(o, "events", events);
		json_end(o);
		return;
	}
	buf_puts(&o->b, "backed up ");
	buf_put_u64(&o->b, events);
	buf_puts(&o->b, events == 1 ? " event to " : " events to ");
	out_put_safe(&o->b, path, strlen(path));
	end_line(o);
}

void out_help(out *o, const char *text)
{
	if (o->opts.json) {
		json_begin(o, true, "help");
		json_str(o, "text", text);
		json_end(o);
		return;
	}
	buf_puts(&o->b, text);
	end_line(o);
}
