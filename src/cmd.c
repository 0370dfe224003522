/* cmd.c — the command table, reading a line as a command, and running it.
 *
 * cmd_parse splits the line (parse_split), finds the command by its first
 * token (a perfect hash over the names, a word at a time), checks the
 * argument count, and has the arguments checked by the kinds the entry
 * names (parse_values). cmd_run reports what does not parse, or calls the
 * entry's exec; each exec lives in its own src/cmd_NAME.c, but for help,
 * which reads the table and so lives here. */
#include <string.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/cmd.h"
#include "cmd_impl.h"

/* ---- the table ---- */

/* Each defined in its src/cmd_NAME.c (cmd_refresh.c holds rebuild too,
 * cmd_quit.c exit; help is below). A new command is its file, a line in
 * each of these two lists, and one in src/meson.build. */
extern const cmd_entry cmd_deposit_entry;
extern const cmd_entry cmd_withdraw_entry;
extern const cmd_entry cmd_transfer_entry;
extern const cmd_entry cmd_refresh_entry;
extern const cmd_entry cmd_balances_entry;
extern const cmd_entry cmd_balance_entry;
extern const cmd_entry cmd_history_entry;
extern const cmd_entry cmd_status_entry;
extern const cmd_entry cmd_backup_entry;
extern const cmd_entry cmd_rebuild_entry;
extern const cmd_entry cmd_help_entry;
extern const cmd_entry cmd_quit_entry;
extern const cmd_entry cmd_exit_entry;

/* In the order help lists them. */
const cmd_entry *const cmd_table[] = {
	&cmd_deposit_entry,
	&cmd_withdraw_entry,
	&cmd_transfer_entry,
	&cmd_refresh_entry,
	&cmd_balances_entry,
	&cmd_balance_entry,
	&cmd_history_entry,
	&cmd_status_entry,
	&cmd_backup_entry,
	&cmd_rebuild_entry,
	&cmd_help_entry,
	&cmd_quit_entry,
	&cmd_exit_entry,
};

const size_t cmd_table_len = sizeof cmd_table / sizeof cmd_table[0];

/* ---- finding a command by name ---- */

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
static const cmd_entry *find_entry[1 << FIND_BITS];	/* by slot */
static uint64_t find_mult;			/* 0 until made */

/* Out of line: made once, and its loop's registers would otherwise be
 * saved on every look-up. */
static __attribute__((noinline)) void make_find_table(void)
{
	for (uint64_t m = 0x9e3779b97f4a7c15ull;; m += 2 * 0x2545f4914f6cdd1dull) {
		bool ok = true;
		memset(find_words, 0, sizeof find_words);
		for (size_t i = 0; i < cmd_table_len && ok; i++) {
			const char *name = cmd_table[i]->name;
			uint64_t w = name_word(name, strlen(name));
			unsigned slot = find_slot(w, m);
			ok = find_words[slot] == 0;
			find_words[slot] = w;
			find_entry[slot] = cmd_table[i];
		}
		if (ok) {
			find_mult = m;	/* odd: m starts odd and steps by even */
			return;
		}
	}
}

/* The command whose name, as name_word makes it, is w (1 to 8 bytes, the
 * unused bytes zero), or NULL. */
static inline const cmd_entry *find_word(uint64_t w)
{
	if (find_mult == 0)
		make_find_table();
	unsigned slot = find_slot(w, find_mult);
	/* the zero bytes fix the length; an empty slot's 0 is no name */
	return find_words[slot] == w && w != 0 ? find_entry[slot] : NULL;
}

/* The command name[0..len) names, in any case. */
static const cmd_entry *find_len(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX_LEN)
		return NULL;
	return find_word(name_word(name, len));
}

const cmd_entry *cmd_find(const char *name)
{
	return find_len(name, strlen(name));
}

#define ONES 0x0101010101010101ull

/* find_len for a token in a parsed line: the slack after the line lets a
 * name of up to eight bytes be read as one word. */
static inline __attribute__((always_inline)) const cmd_entry *
find_token(const char *name, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (len == 0 || len > NAME_MAX_LEN)
		return NULL;
	uint64_t w;
	memcpy(&w, name, 8);
	uint64_t keep = len == 8 ? ~0ull : (1ull << (8 * len)) - 1;
	return find_word((w | ONES * 0x20) & keep);
#else
	return find_len(name, len);
#endif
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
		size_t d = distance(name, cmd_table[i]->name);
		if (d < best_d) {
			best_d = d;
			best = cmd_table[i];
		}
	}
	/* near means at most a third of the word wrong, and at least 1 edit */
	size_t len = strlen(name);
	return best && best_d <= (len < 6 ? 1 : 2) ? best : NULL;
}

/* ---- help: the table read out ----
 *
 * Help lives with the table, not in a file of its own: the table points at
 * every entry, and help reads the table, so anywhere else the two would
 * call each other. */

/* Reports a name help does not know, with the nearest one if any. */
static cmd_status help_unknown(cmd_ctx *ctx, const cmd_entry *self,
			       const char *name)
{
	const cmd_entry *near = cmd_suggest(name);
	if (near != NULL)
		out_error(ctx->out, ctx->line, self->name, ERR_UNKNOWN_COMMAND,
			  "no command '%.80s'; did you mean '%s'?", name,
			  near->name);
	else
		out_error(ctx->out, ctx->line, self->name, ERR_UNKNOWN_COMMAND,
			  "no command '%.80s' (type 'help' for the list)", name);
	return CMD_FAILED;
}

static cmd_status exec_help(cmd_ctx *ctx, const cmd_entry *self,
			    const parse_result *p)
{
	buf text = { 0 };
	if (p->argc == 0) {
		for (size_t i = 0; i < cmd_table_len; i++)
			buf_printf(&text, "%s%-24s %s", i ? "\n" : "",
				   cmd_table[i]->usage, cmd_table[i]->summary);
	} else {
		const cmd_entry *c = cmd_find(p->argv[0]);
		if (c == NULL)
			return help_unknown(ctx, self, p->argv[0]);
		buf_printf(&text, "usage: %s\n%s\nexample: %s", c->usage,
			   c->summary, c->example);
	}
	out_help(ctx->out, buf_cstr(&text));
	buf_free(&text);
	return CMD_OK;
}

const cmd_entry cmd_help_entry = {
	"help", 0, 1, "c", "help [COMMAND]",
	"list the commands, or explain one",
	"help transfer", exec_help,
};

/* ---- reading a line as a command ---- */

/* cmd_parse, inlined into cmd_run (with the look-up): every line goes
 * through it, and calls of their own were 0.6% of a mixed workload's
 * instructions. */
static inline __attribute__((always_inline)) error_code
parse_command(char *line, size_t len, cmd_parsed *res)
{
	parse_tokens t;
	res->cmd = NULL;
	res->name = "";
	error_code rc = parse_split(line, len, &t);	/* count 0 on an error */
	const char *kinds = "";	/* nothing is checked but the line itself */
	if (rc == ERR_OK && t.count > 0) {
		const cmd_entry *cmd = find_token(t.tok[0], t.len[0]);
		int argc = t.count - 1;
		if (cmd == NULL) {
			for (char *c = t.tok[0]; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			res->name = t.tok[0];
			rc = ERR_UNKNOWN_COMMAND;
		} else {
			res->cmd = cmd;
			res->name = cmd->name;
			if (argc < cmd->min_args || argc > cmd->max_args)
				rc = ERR_USAGE;	/* the count comes first */
			else
				kinds = cmd->args;
		}
	}
	/* the arguments are kept (and counted) whatever went wrong */
	error_code vrc = parse_values(kinds, &t, &res->arg);
	return rc != ERR_OK ? rc : vrc;
}

error_code cmd_parse(char *line, size_t len, cmd_parsed *res)
{
	return parse_command(line, len, res);
}

/* ---- running a line ---- */

static cmd_status bad_input(cmd_ctx *ctx, error_code rc, const cmd_parsed *p)
{
	const char *arg = p->arg.bad >= 0 ? p->arg.argv[p->arg.bad] : "";
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
			  "cannot transfer from %s to itself", p->arg.account[0]);
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
	cmd_parsed p;
	error_code rc = parse_command(line, len, &p);
	if (rc != ERR_OK)
		return bad_input(ctx, rc, &p);
	if (p.cmd == NULL)
		return CMD_OK;	/* blank or comment */
	return p.cmd->exec(ctx, p.cmd, &p.arg);
}
