/* fuzz_json.c — the output path with hostile strings. The input is split at
 * 0xff bytes into a command name, a message, an account, a text and bytes
 * for numbers; they go through every JSON result line out.c writes (with
 * strings out.c would never be handed: the point is that JSON mode holds
 * whatever it gets) and through json_put_string, out_put_safe and text
 * mode's error lines.
 *
 * Every JSON line must parse under a strict RFC 8259 checker (fuzz.h), its
 * first keys must be ok and cmd, and each string must decode to the bytes
 * given, with each byte that is not well-formed UTF-8 as U+FFFD. Text mode
 * must print valid UTF-8 and no control character, and out_put_safe's
 * escapes must undo to the bytes given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/json.h"
#include "simplecqrs/out.h"
#include "fuzz.h"

enum { P_CMD, P_MSG, P_ACCOUNT, P_TEXT, P_NUMS, NPARTS };

typedef struct input {
	const uint8_t *part[NPARTS];
	size_t len[NPARTS];
	char *cstr[NPARTS];	/* each part up to its first NUL */
	size_t nums_at;
} input;

/* The next number from the number bytes (0 when they run out). */
static uint64_t next_u64(input *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8 && in->nums_at < in->len[P_NUMS]; i++)
		v |= (uint64_t)in->part[P_NUMS][in->nums_at++] << (8 * i);
	return v;
}

static int fd = -1;

static char *read_all(size_t *n)
{
	off_t end = lseek(fd, 0, SEEK_CUR);
	char *s = malloc((size_t)end + 1);
	FUZZ_CHECK(pread(fd, s, (size_t)end, 0) == (ssize_t)end, "pread");
	s[end] = '\0';
	*n = (size_t)end;
	return s;
}

/* Whether the JSON string m decodes to what json.h promises for s[0..n). */
static void check_string(const fuzz_member *m, const void *s, size_t n,
			 const char *what)
{
	FUZZ_CHECK(m != NULL, "no %s", what);
	unsigned char *got = malloc(m->value_len + 1), *exp = malloc(3 * n + 1);
	size_t got_len = 0, exp_len = fuzz_json_expect(s, n, exp);
	FUZZ_CHECK(fuzz_json_get_string(m, got, &got_len), "%s is no string", what);
	FUZZ_CHECK(got_len == exp_len && memcmp(got, exp, exp_len) == 0,
		   "%s does not decode to its bytes", what);
	free(got);
	free(exp);
}

static void check_u64(const fuzz_json *j, const char *key, uint64_t want)
{
	uint64_t v;
	FUZZ_CHECK(fuzz_json_get_u64(fuzz_json_get(j, key), &v) && v == want,
		   "%s is not %llu", key, (unsigned long long)want);
}

/* One JSON literal string in b, decoding to s[0..n) as json.h promises. */
static void check_literal(const buf *b, const void *s, size_t n)
{
	fuzz_member m = { .value = b->data, .value_len = b->len };
	check_string(&m, s, n, "json_put_string");
}

/* Text for a terminal: valid UTF-8 and no control character but LF and
 * tab, counting C1 (U+0080..U+009F), which some terminals obey. */
static void check_text(const char *s, size_t n, const char *what)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t len = fuzz_utf8_len(u + i, n - i);
		FUZZ_CHECK(len > 0, "%s: invalid UTF-8 at byte %zu", what, i);
		uint32_t cp = fuzz_utf8_cp(u + i, len);
		FUZZ_CHECK(fuzz_text_ok(cp), "%s: control U+%04X at byte %zu", what,
			   (unsigned)cp, i);
		i += len;
	}
}

/* out_put_safe's escapes (\\ and \xNN) undone must give s[0..n) back. */
static void check_safe(const buf *b, const uint8_t *s, size_t n)
{
	check_text(b->data, b->len, "out_put_safe");
	size_t k = 0;
	for (size_t i = 0; i < b->len; k++) {
		unsigned char c = (unsigned char)b->data[i];
		FUZZ_CHECK(k < n, "out_put_safe: more bytes than given");
		if (c == '\\') {
			FUZZ_CHECK(i + 1 < b->len, "out_put_safe: lone backslash");
			if (b->data[i + 1] == '\\') {
				c = '\\';
				i += 2;
			} else {
				FUZZ_CHECK(b->data[i + 1] == 'x' && i + 3 < b->len,
					   "out_put_safe: bad escape");
				int hi = fuzz_hex((unsigned char)b->data[i + 2]);
				int lo = fuzz_hex((unsigned char)b->data[i + 3]);
				FUZZ_CHECK(hi >= 0 && lo >= 0, "out_put_safe: bad \\x");
				c = (unsigned char)(hi << 4 | lo);
				i += 4;
			}
		} else {
			i++;
		}
		FUZZ_CHECK(c == s[k], "out_put_safe: byte %zu differs", k);
	}
	FUZZ_CHECK(k == n, "out_put_safe: %zu bytes of %zu", k, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0) {
		FILE *f = tmpfile();	/* kept for the process's life */
		FUZZ_CHECK(f != NULL, "tmpfile");
		fd = fileno(f);
	}
	input in = { 0 };
	const uint8_t *p = data, *end = data + size;
	for (int k = 0; k < NPARTS; k++) {
		const uint8_t *e = k < NPARTS - 1 ? memchr(p, 0xff, (size_t)(end - p)) : NULL;
		if (e == NULL)
			e = end;
		in.part[k] = p;
		in.len[k] = (size_t)(e - p);
		const uint8_t *nul = memchr(p, 0, in.len[k]);
		size_t clen = nul ? (size_t)(nul - p) : in.len[k];
		in.cstr[k] = malloc(clen + 1);
		memcpy(in.cstr[k], p, clen);
		in.cstr[k][clen] = '\0';
		p = e < end ? e + 1 : end;
	}
	const char *cmd = in.cstr[P_CMD], *account = in.cstr[P_ACCOUNT];
	const char *text = in.cstr[P_TEXT], *msgc = in.cstr[P_MSG];

	/* ---- the string writers on their own ---- */
	buf b = { 0 };
	json_put_string(&b, (const char *)data, size);
	check_literal(&b, data, size);
	b.len = 0;
	json_put_cstring(&b, cmd);
	check_literal(&b, cmd, strlen(cmd));
	b.len = 0;
	out_put_safe(&b, (const char *)data, size);
	check_safe(&b, data, size);
	buf_free(&b);

	/* ---- every JSON line ---- */
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0, "reset");
	out_opts oo = { .json = true, .out_fd = fd, .err_fd = fd };
	out *o = out_new(&oo);
	unsigned long line = (unsigned long)next_u64(&in);
	error_code code = (error_code)(1 + next_u64(&in) % (ERR_COUNT - 1));

	out_error_msg(o, line, cmd, code, (const char *)in.part[P_MSG], in.len[P_MSG]);
	out_error(o, line, cmd, code, "%s", msgc);

	size_t nev = (size_t)(next_u64(&in) % 33);
	store_event evs[32];
	int64_t balance = 0;
	for (size_t i = 0; i < nev; i++) {
		uint64_t r = next_u64(&in);
		int64_t amount = (int64_t)(next_u64(&in) & INT64_MAX);
		if (amount == 0)
			amount = 1;
		/* a history the store could hold: never below 0 or past the max */
		bool debit = r & 1;
		if (debit && amount > balance) {
			if (balance > 0)
				amount = balance;
			else
				debit = false;
		}
		if (!debit && amount > INT64_MAX - balance) {
			amount = INT64_MAX - balance;
			if (amount == 0) {
				debit = true;
				amount = 1;
			}
		}
		balance += debit ? -amount : amount;
		evs[i] = (store_event){ .position = r >> 1, .version = i + 1,
					.type = debit ? EVENT_DEBITED : EVENT_CREDITED,
					.amount = amount,
					.time_ms = (int64_t)next_u64(&in) };
	}
	out_history(o, account, evs, nev);

	sheet_row rows[3] = {
		{ cmd, (int64_t)next_u64(&in) },
		{ account, (int64_t)next_u64(&in) },
		{ text, (int64_t)next_u64(&in) },
	};
	size_t nrows = (size_t)(next_u64(&in) % 4);
	uint64_t cp = next_u64(&in), behind = next_u64(&in);
	out_balances(o, rows, nrows, cp, behind);
	int64_t bal = (int64_t)next_u64(&in);
	out_balance(o, account, bal, cp, behind);
	handler_result res = { .position = next_u64(&in) };
	int64_t amount = (int64_t)next_u64(&in);
	out_transfer(o, cmd, account, amount, &res);
	out_status(o, text, (cp & 1) ? text : NULL, cp, behind, cp, behind);
	out_help(o, text);
	out_refresh(o, amount & 1, cp, behind);
	FUZZ_CHECK(out_flush(o), "flush");
	out_free(o);

	size_t n;
	char *s = read_all(&n);
	static const char *const cmds[] = { NULL, NULL, "history", "balances",
					    "balance", "transfer", "status", "help",
					    NULL };
	const char *at = s;
	for (int k = 0; k < 9; k++) {
		const char *nl = memchr(at, '\n', (size_t)(s + n - at));
		FUZZ_CHECK(nl != NULL, "line %d missing", k + 1);
		fuzz_json j;
		FUZZ_CHECK(fuzz_json_line(&j, at, (size_t)(nl - at)),
			   "line %d is not JSON: %.*s", k + 1, (int)(nl - at), at);
		FUZZ_CHECK(j.nmembers >= 2 && strcmp(j.members[0].key, "ok") == 0 &&
			   strcmp(j.members[1].key, "cmd") == 0, "line %d keys", k + 1);
		if (k < 2) {
			FUZZ_CHECK(fuzz_json_is(&j.members[0], "false"), "ok");
			check_string(&j.members[1], cmd, strlen(cmd), "cmd");
			check_u64(&j, "line", line);
			check_string(fuzz_json_get(&j, "error"), error_name(code),
				     strlen(error_name(code)), "error");
			if (k == 0)
				check_string(fuzz_json_get(&j, "message"), in.part[P_MSG],
					     in.len[P_MSG], "message");
			else
				check_string(fuzz_json_get(&j, "message"), msgc,
					     strlen(msgc), "message");
		} else if (cmds[k]) {
			FUZZ_CHECK(fuzz_json_is(&j.members[0], "true"), "ok");
			check_string(&j.members[1], cmds[k], strlen(cmds[k]), "cmd");
		}
		switch (k) {
		case 2:
		case 4:
			check_string(fuzz_json_get(&j, "account"), account,
				     strlen(account), "account");
			break;
		case 5:
			check_string(fuzz_json_get(&j, "from"), cmd, strlen(cmd), "from");
			check_string(fuzz_json_get(&j, "to"), account, strlen(account), "to");
			break;
		case 6:
			check_string(fuzz_json_get(&j, "store"), text, strlen(text), "store");
			if (cp & 1)
				check_string(fuzz_json_get(&j, "location"), text,
					     strlen(text), "location");
			break;
		case 7:
			check_string(fuzz_json_get(&j, "text"), text, strlen(text), "text");
			break;
		default:
			break;
		}
		at = nl + 1;
	}
	FUZZ_CHECK(at == s + n, "more output than 9 lines");
	free(s);

	/* ---- text mode: what it echoes is escaped ---- */
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0, "reset");
	oo.json = false;
	o = out_new(&oo);
	out_echo(o, (const char *)in.part[P_MSG], in.len[P_MSG]);
	out_error_msg(o, line, cmd, code, (const char *)in.part[P_MSG], in.len[P_MSG]);
	out_error(o, line, cmd, code, "unknown command '%.80s'", msgc);
	out_flush(o);
	out_free(o);
	s = read_all(&n);
	check_text(s, n, "text mode");
	free(s);

	for (int k = 0; k < NPARTS; k++)
		free(in.cstr[k]);
	return 0;
}
