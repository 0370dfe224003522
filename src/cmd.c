/* cmd.c — the command table and each command's exec.
 *
 * cmd_run parses a line, reports a parse error, or calls the row's exec.
 * Each exec is the picture in a few lines: the handler decides and the store
 * keeps (writes), or the balance sheet answers (queries), then out shows. */
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/cmd.h"
#include "simplecqrs/xmalloc.h"

/* ---- helpers every exec shares ---- */

/* The sheet's lag (sheet_behind); the caller reports a storage error. */
static error_code lag(cmd_ctx *ctx, uint64_t *behind)
{
	return sheet_behind(ctx->sheet, ctx->store, behind);
}

static cmd_status storage_failed(cmd_ctx *ctx, const char *cmd)
{
	out_error(ctx->out, ctx->line, cmd, ERR_STORAGE, "storage failed: %s",
		  store_errmsg(ctx->store));
	return CMD_FATAL;
}

/* Copies s to p; returns the end. */
static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

/* Reports a handler's refusal; the message says why in the account's terms. */
static cmd_status refused(cmd_ctx *ctx, const char *cmd, error_code rc,
			  const char *account, const char *to, int64_t amount,
			  const handler_result *res)
{
	/* The two refusals a script meets most are put together by hand:
	 * a printf per refusal was a tenth of a mixed workload's time.
	 * Ids are at most 64 bytes and numbers 20, so 200 bytes hold it. */
	char msg[200], *p = msg;
	switch (rc) {
	case ERR_UNKNOWN_ACCOUNT:
		p = put_str(put_str(p, "no account "), account);
		out_error_msg(ctx->out, ctx->line, cmd, rc, msg, (size_t)(p - msg));
		break;
	case ERR_INSUFFICIENT_FUNDS:
		p = put_str(put_str(p, account), " has ");
		p += buf_fmt_u64(p, (uint64_t)res->balance);
		p = put_str(put_str(put_str(p, ", cannot "), cmd), " ");
		p += buf_fmt_u64(p, (uint64_t)amount);
		out_error_msg(ctx->out, ctx->line, cmd, rc, msg, (size_t)(p - msg));
		break;
	case ERR_OVERFLOW:
		out_error(ctx->out, ctx->line, cmd, rc,
			  "%s has %lld; %lld more would pass 9223372036854775807",
			  to, (long long)res->balance, (long long)amount);
		break;
	case ERR_SAME_ACCOUNT:
		out_error(ctx->out, ctx->line, cmd, rc,
			  "cannot transfer from %s to itself", account);
		break;
	case ERR_CONFLICT:
		out_error(ctx->out, ctx->line, cmd, rc,
			  "another writer changed %s %u time%s; nothing was done",
			  account, res->conflicts, res->conflicts == 1 ? "" : "s");
		break;
	case ERR_BUSY:
		out_error(ctx->out, ctx->line, cmd, rc, "%s; nothing was written",
			  store_errmsg(ctx->store));
		break;
	default:
		return storage_failed(ctx, cmd);
	}
	return CMD_FAILED;
}

/* ---- writes: command → handler → store ---- */

static cmd_status exec_deposit(cmd_ctx *ctx, const parse_result *p)
{
	handler_result res;
	error_code rc = handler_deposit(ctx->handler, p->account[0],
					 p->account_len[0], p->amount, &res);
	if (rc != ERR_OK)
		return refused(ctx, "deposit", rc, p->account[0], p->account[0],
			       p->amount, &res);
	out_deposit(ctx->out, p->account[0], p->account_len[0], p->amount, &res);
	return CMD_OK;
}

static cmd_status exec_withdraw(cmd_ctx *ctx, const parse_result *p)
{
	handler_result res;
	error_code rc = handler_withdraw(ctx->handler, p->account[0],
					  p->account_len[0], p->amount, &res);
	if (rc != ERR_OK)
		return refused(ctx, "withdraw", rc, p->account[0], NULL,
			       p->amount, &res);
	out_withdraw(ctx->out, p->account[0], p->account_len[0], p->amount,
		     &res);
	return CMD_OK;
}

static cmd_status exec_transfer(cmd_ctx *ctx, const parse_result *p)
{
	handler_result res;
	error_code rc = handler_transfer(ctx->handler, p->account[0],
					 p->account_len[0], p->account[1],
					 p->account_len[1], p->amount, &res);
	if (rc != ERR_OK)
		return refused(ctx, "transfer", rc, p->account[0], p->account[1],
			       p->amount, &res);
	out_transfer(ctx->out, p->account[0], p->account[1], p->amount, &res);
	return CMD_OK;
}

/* ---- the read side: command → balance sheet → output ---- */

/* A refresh or rebuild that failed: other shells kept moving the shared
 * sheet first (conflict, nothing applied), or the store failed. */
static cmd_status sheet_failed(cmd_ctx *ctx, const char *cmd, error_code rc)
{
	if (rc == ERR_BUSY) {
		out_error(ctx->out, ctx->line, cmd, rc, "%s; nothing was applied",
			  store_errmsg(ctx->store));
		return CMD_FAILED;
	}
	if (rc != ERR_CONFLICT)
		return storage_failed(ctx, cmd);
	out_error(ctx->out, ctx->line, cmd, rc,
		  "other shells moved the balance sheet first every time; "
		  "nothing was applied");
	return CMD_FAILED;
}

static cmd_status exec_refresh(cmd_ctx *ctx, const parse_result *p)
{
	uint64_t applied;
	error_code rc = sheet_refresh(ctx->sheet, ctx->store, &applied);
	if (rc != ERR_OK)
		return sheet_failed(ctx, p->name, rc);
	out_refresh(ctx->out, false, applied, sheet_checkpoint(ctx->sheet));
	return CMD_OK;
}

static cmd_status exec_rebuild(cmd_ctx *ctx, const parse_result *p)
{
	uint64_t applied;
	error_code rc = sheet_rebuild(ctx->sheet, ctx->store, &applied);
	if (rc != ERR_OK)
		return sheet_failed(ctx, p->name, rc);
	out_refresh(ctx->out, true, applied, sheet_checkpoint(ctx->sheet));
	return CMD_OK;
}

static cmd_status exec_balances(cmd_ctx *ctx, const parse_result *p)
{
	uint64_t behind;
	if (lag(ctx, &behind) != ERR_OK)
		return storage_failed(ctx, p->name);
	size_t n;
	sheet_row *rows = sheet_sorted(ctx->sheet, &n);
	out_balances(ctx->out, rows, n, sheet_checkpoint(ctx->sheet), behind);
	free(rows);
	return CMD_OK;
}

static int found(void *vctx, const store_event *ev)
{
	(void)ev;
	*(bool *)vctx = true;
	return 1;	/* one event is enough */
}

static cmd_status exec_balance(cmd_ctx *ctx, const parse_result *p)
{
	int64_t balance;
	uint64_t behind;
	if (lag(ctx, &behind) != ERR_OK)
		return storage_failed(ctx, p->name);
	if (!sheet_balance(ctx->sheet, p->account[0], &balance)) {
		/* 'refresh' helps only if the account is in the store already */
		bool stored = false;
		if (behind > 0 && store_read_stream(ctx->store, p->account[0], 0,
						    found, &stored) != ERR_OK)
			return storage_failed(ctx, p->name);
		out_error(ctx->out, ctx->line, p->name, ERR_UNKNOWN_ACCOUNT,
			  "the balance sheet has no account %s%s", p->account[0],
			  stored ? " yet (it is in the store: run 'refresh')" : "");
		return CMD_FAILED;
	}
	out_balance(ctx->out, p->account[0], balance, sheet_checkpoint(ctx->sheet),
		    behind);
	return CMD_OK;
}

typedef struct event_list {
	store_event *evs;
	size_t n, cap;
} event_list;

static int collect(void *vctx, const store_event *ev)
{
	event_list *l = vctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->evs = xreallocarray(l->evs, l->cap, sizeof *l->evs);
	}
	l->evs[l->n] = *ev;
	l->evs[l->n++].stream = NULL;	/* only valid in the callback */
	return 0;
}

static cmd_status exec_history(cmd_ctx *ctx, const parse_result *p)
{
	event_list l = { 0 };
	if (store_read_stream(ctx->store, p->account[0], 0, collect, &l) != ERR_OK) {
		free(l.evs);
		return storage_failed(ctx, p->name);
	}
	if (l.n == 0) {
		out_error(ctx->out, ctx->line, p->name, ERR_UNKNOWN_ACCOUNT,
			  "no account %s", p->account[0]);
		return CMD_FAILED;
	}
	out_history(ctx->out, p->account[0], l.evs, l.n);
	free(l.evs);
	return CMD_OK;
}

static cmd_status exec_status(cmd_ctx *ctx, const parse_result *p)
{
	uint64_t head, streams, behind;
	if (store_head(ctx->store, &head) || store_stream_count(ctx->store, &streams) ||
	    lag(ctx, &behind))
		return storage_failed(ctx, p->name);
	out_status(ctx->out, store_kind(ctx->store), store_location(ctx->store),
		   head, streams, sheet_checkpoint(ctx->sheet), behind);
	return CMD_OK;
}

static cmd_status exec_backup(cmd_ctx *ctx, const parse_result *p)
{
	/* the results shown so far go out first, and so are committed: the
	 * copy holds every write acknowledged before it */
	out_flush(ctx->out);
	if (out_held(ctx->out))
		return CMD_FATAL;	/* the session says what was lost */
	char *path;
	uint64_t events;
	error_code rc = store_backup(ctx->store, p->argv[0], &path, &events);
	if (rc == ERR_BACKUP_FAILED) {
		out_error(ctx->out, ctx->line, p->name, rc, "%s; nothing was written",
			  store_errmsg(ctx->store));
		return CMD_FAILED;
	}
	if (rc != ERR_OK)
		return storage_failed(ctx, p->name);
	out_backup(ctx->out, path, events);
	free(path);
	return CMD_OK;
}

/* ---- the shell's own commands ---- */

static cmd_status exec_help(cmd_ctx *ctx, const parse_result *p)
{
	buf text = { 0 };
	if (p->argc == 0) {
		for (size_t i = 0; i < cmd_table_len; i++)
			buf_printf(&text, "%s%-24s %s", i ? "\n" : "",
				   cmd_table[i].usage, cmd_table[i].summary);
	} else {
		const cmd_entry *c = cmd_find(p->argv[0]), *near;
		if (c == NULL && (near = cmd_suggest(p->argv[0])) != NULL) {
			out_error(ctx->out, ctx->line, p->name, ERR_UNKNOWN_COMMAND,
				  "no command '%.80s'; did you mean '%s'?",
				  p->argv[0], near->name);
			return CMD_FAILED;
		}
		if (c == NULL) {
			out_error(ctx->out, ctx->line, p->name, ERR_UNKNOWN_COMMAND,
				  "no command '%.80s' (type 'help' for the list)",
				  p->argv[0]);
			return CMD_FAILED;
		}
		buf_printf(&text, "usage: %s\n%s\nexample: %s", c->usage,
			   c->summary, c->example);
	}
	out_help(ctx->out, buf_cstr(&text));
	buf_free(&text);
	return CMD_OK;
}

static cmd_status exec_quit(cmd_ctx *ctx, const parse_result *p)
{
	(void)ctx;
	(void)p;
	return CMD_QUIT;
}

const cmd_entry cmd_table[] = {
	{ "deposit", 2, 2, "an", "deposit ACCOUNT AMOUNT",
	  "credit AMOUNT; the first deposit opens ACCOUNT",
	  "deposit XX1 1000", exec_deposit },
	{ "withdraw", 2, 2, "an", "withdraw ACCOUNT AMOUNT",
	  "debit AMOUNT, if ACCOUNT holds that much",
	  "withdraw XX1 300", exec_withdraw },
	{ "transfer", 3, 3, "aan", "transfer FROM TO AMOUNT",
	  "debit FROM, credit TO: both or neither",
	  "transfer XX1 XX2 50", exec_transfer },
	{ "refresh", 0, 0, "", "refresh",
	  "bring the balance sheet up to date",
	  "refresh", exec_refresh },
	{ "balances", 0, 0, "", "balances",
	  "the balance sheet, and how far it lags",
	  "balances", exec_balances },
	{ "balance", 1, 1, "a", "balance ACCOUNT",
	  "one balance from the balance sheet",
	  "balance XX1", exec_balance },
	{ "history", 1, 1, "a", "history ACCOUNT",
	  "an account's events, with the running balance",
	  "history XX1", exec_history },
	{ "status", 0, 0, "", "status",
	  "the store, its head and streams, and the lag",
	  "status", exec_status },
	{ "backup", 1, 1, "f", "backup PATH",
	  "copy the whole ledger to a new SQLite file, while shells work",
	  "backup ledger-copy.db", exec_backup },
	{ "rebuild", 0, 0, "", "rebuild",
	  "replay every event into an empty balance sheet",
	  "rebuild", exec_rebuild },
	{ "help", 0, 1, "c", "help [COMMAND]",
	  "list the commands, or explain one",
	  "help transfer", exec_help },
	{ "quit", 0, 0, "", "quit",
	  "leave (so do exit and Ctrl-D)",
	  "quit", exec_quit },
	{ "exit", 0, 0, "", "exit",
	  "leave (so do quit and Ctrl-D)",
	  "exit", exec_quit },
};

const size_t cmd_table_len = sizeof cmd_table / sizeof cmd_table[0];

#define NAME_MAX_LEN 8	/* no command name is longer: one word each */

/* name[0..len) as one word with 0x20 or-ed into every byte. That
 * lower-cases a letter and turns nothing else into one, so it equals a
 * lower-case name's word only if the bytes are that name in some case. */
static uint64_t name_word(const char *name, size_t len)
{
	uint64_t w = 0;
	for (size_t i = 0; i < len; i++)
		w |= (uint64_t)((unsigned char)name[i] | 0x20) << (8 * i);
	return w;
}

#define FIND_BITS 5	/* a 32-slot table for the dozen names */

/* The slot of a name's word under multiplier m: its top FIND_BITS bits. */
static unsigned find_slot(uint64_t w, uint64_t m)
{
	return (unsigned)((w * m) >> (64 - FIND_BITS));
}

/* Every line looks its command up, so the names get a perfect hash: the
 * first multiplier (from a fixed sequence) that puts no two names in one
 * slot. A look-up is then a multiply, a shift and one compare. */
static uint64_t find_words[1 << FIND_BITS];	/* by slot; 0 = empty */
static uint8_t find_index[1 << FIND_BITS];	/* by slot: table index */
static uint64_t find_mult;			/* 0 until made */

/* Out of line: made once, and its loop's registers would otherwise be
 * saved on every look-up. */
static __attribute__((noinline)) void make_find_table(void)
{
	for (uint64_t m = 0x9e3779b97f4a7c15ull;; m += 2 * 0x2545f4914f6cdd1dull) {
		bool ok = true;
		memset(find_words, 0, sizeof find_words);
		for (size_t i = 0; i < cmd_table_len && ok; i++) {
			const char *name = cmd_table[i].name;
			uint64_t w = name_word(name, strlen(name));
			unsigned slot = find_slot(w, m);
			ok = find_words[slot] == 0;
			find_words[slot] = w;
			find_index[slot] = (uint8_t)i;
		}
		if (ok) {
			find_mult = m;	/* odd: m starts odd and steps by even */
			return;
		}
	}
}

const cmd_entry *cmd_find_word(uint64_t w)
{
	if (find_mult == 0)
		make_find_table();
	unsigned slot = find_slot(w, find_mult);
	/* the zero bytes fix the length; an empty slot's 0 is no name */
	return find_words[slot] == w && w != 0 ? &cmd_table[find_index[slot]]
					       : NULL;
}

const cmd_entry *cmd_find_len(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX_LEN)
		return NULL;
	return cmd_find_word(name_word(name, len));
}

const cmd_entry *cmd_find(const char *name)
{
	return cmd_find_len(name, strlen(name));
}

/* Edit distance (insert, delete, substitute, swap neighbours), capped. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return SIZE_MAX;
	size_t d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const cmd_entry *cmd_suggest(const char *name)
{
	const cmd_entry *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < cmd_table_len; i++) {
		size_t d = distance(name, cmd_table[i].name);
		if (d < best_d) {
			best_d = d;
			best = &cmd_table[i];
		}
	}
	/* near means at most a third of the word wrong, and at least 1 edit */
	size_t len = strlen(name);
	return best && best_d <= (len < 6 ? 1 : 2) ? best : NULL;
}

/* ---- running a line ---- */

static cmd_status bad_input(cmd_ctx *ctx, error_code rc, const parse_result *p)
{
	const char *arg = p->bad >= 0 ? p->argv[p->bad] : "";
	const cmd_entry *s;
	switch (rc) {
	case ERR_UNKNOWN_COMMAND:
		if ((s = cmd_suggest(p->name)) != NULL)
			out_error(ctx->out, ctx->line, p->name, rc,
				  "unknown command '%.80s'; did you mean '%s'?",
				  p->name, s->name);
		else
			out_error(ctx->out, ctx->line, p->name, rc,
				  "unknown command '%.80s' (type 'help' for the list)",
				  p->name);
		break;
	case ERR_USAGE:
		out_error(ctx->out, ctx->line, p->name, rc, "usage: %s",
			  p->cmd->usage);
		break;
	case ERR_INVALID_ACCOUNT:
		out_error(ctx->out, ctx->line, p->name, rc,
			  "invalid account id '%.80s%s': 1 to 64 of A-Z a-z 0-9 _ - .",
			  arg, strlen(arg) > 80 ? "..." : "");
		break;
	case ERR_INVALID_AMOUNT:
		out_error(ctx->out, ctx->line, p->name, rc,
			  "invalid amount '%.80s%s': a whole number of minor units "
			  "from 1 to 9223372036854775807, digits only",
			  arg, strlen(arg) > 80 ? "..." : "");
		break;
	case ERR_SAME_ACCOUNT:
		out_error(ctx->out, ctx->line, p->name, rc,
			  "cannot transfer from %s to itself", p->account[0]);
		break;
	default:
		return cmd_reject(ctx, rc);
	}
	return CMD_FAILED;
}

cmd_status cmd_reject(cmd_ctx *ctx, error_code code)
{
	if (code == ERR_LINE_TOO_LONG)
		out_error(ctx->out, ctx->line, "", code,
			  "line longer than %d bytes; ignored", PARSE_MAX_LINE);
	else
		out_error(ctx->out, ctx->line, "", code,
			  "line holds a NUL byte; ignored");
	return CMD_FAILED;
}

cmd_status cmd_run(cmd_ctx *ctx, char *line, size_t len)
{
	parse_result p;
	error_code rc = parse_line(line, len, &p);
	if (rc != ERR_OK)
		return bad_input(ctx, rc, &p);
	if (p.cmd == NULL)
		return CMD_OK;	/* blank or comment */
	return p.cmd->exec(ctx, &p);
}
