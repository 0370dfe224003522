/* fuzz_parse.c — reading a line as a command (cmd_parse: parse_split, the
 * command's look-up and arity, parse_values) against a slow reference
 * written from SPEC's input rules: the input is one line (with PARSE_SLACK
 * zeroes after it, as the reader gives), and cmd_parse must agree with the
 * reference on the error code, the command, the arguments, the ids and the
 * amount; parse_blank must agree with it; nothing past line[len] is
 * written. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/cmd.h"
#include "simplecqrs/parse.h"
#include "fuzz.h"

/* SPEC: 1 to 64 characters from A-Z a-z 0-9 _ - . */
static bool ref_id(const char *s, size_t n)
{
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* SPEC: [1-9][0-9]*, at most 9223372036854775807; compared as text, not
 * computed the parser's way. */
static bool ref_amount(const char *s, size_t n, int64_t *v)
{
	static const char max[] = "9223372036854775807";
	if (n < 1 || n > sizeof max - 1 || s[0] < '1' || s[0] > '9')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (n == sizeof max - 1 && memcmp(s, max, n) > 0)
		return false;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x * 10 + (uint64_t)(s[i] - '0');
	*v = (int64_t)x;
	return true;
}

static const cmd_entry *ref_command(const char *s, size_t n)
{
	for (size_t i = 0; i < cmd_table_len; i++) {
		const char *name = cmd_table[i]->name;
		if (strlen(name) != n)
			continue;
		size_t k = 0;
		while (k < n) {
			char c = s[k];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (c != name[k])
				break;
			k++;
		}
		if (k == n)
			return cmd_table[i];
	}
	return NULL;
}

#define REF_TOKENS 8

typedef struct ref_result {
	error_code rc;
	const cmd_entry *cmd;
	char name[PARSE_MAX_LINE + 1];	/* lower-cased for an unknown one */
	int argc;
	int bad;
	size_t off[REF_TOKENS], len[REF_TOKENS];	/* tokens in the input */
	int64_t amount;
	int account_arg[2];	/* which arguments are the ids */
	int naccounts;
} ref_result;

static void reference(const char *s, size_t len, ref_result *r)
{
	memset(r, 0, sizeof *r);
	r->bad = -1;
	size_t n = len;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	bool nul = memchr(s, '\0', len) != NULL;
	if (n > PARSE_MAX_LINE) {
		r->rc = nul ? ERR_INVALID_INPUT : ERR_LINE_TOO_LONG;
		return;
	}
	if (nul) {	/* anywhere, comments included */
		r->rc = ERR_INVALID_INPUT;
		return;
	}
	int ntok = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == ' ' || s[i] == '\t') {
			i++;
			continue;
		}
		if (s[i] == '#')
			break;
		size_t j = i;
		while (j < n && s[j] != ' ' && s[j] != '\t')
			j++;
		if (ntok < REF_TOKENS) {
			r->off[ntok] = i;
			r->len[ntok] = j - i;
		}
		ntok++;
		i = j;
	}
	if (ntok == 0)
		return;	/* blank or comment */
	r->argc = ntok - 1;
	r->cmd = ref_command(s + r->off[0], r->len[0]);
	if (r->cmd == NULL) {
		for (size_t i = 0; i < r->len[0]; i++) {
			char c = s[r->off[0] + i];
			r->name[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		r->rc = ERR_UNKNOWN_COMMAND;
		return;
	}
	strcpy(r->name, r->cmd->name);
	if (r->argc < r->cmd->min_args || r->argc > r->cmd->max_args) {
		r->rc = ERR_USAGE;
		return;
	}
	/* SPEC's order: each id left to right, then the amount */
	for (int a = 0; a < r->argc; a++) {
		if (r->cmd->args[a] != 'a')
			continue;
		if (!ref_id(s + r->off[a + 1], r->len[a + 1])) {
			r->rc = ERR_INVALID_ACCOUNT;
			r->bad = a;
			return;
		}
		r->account_arg[r->naccounts++] = a;
	}
	for (int a = 0; a < r->argc; a++) {
		if (r->cmd->args[a] == 'n' &&
		    !ref_amount(s + r->off[a + 1], r->len[a + 1], &r->amount)) {
			r->rc = ERR_INVALID_AMOUNT;
			r->bad = a;
			return;
		}
	}
	if (r->naccounts == 2) {
		size_t o0 = r->off[r->account_arg[0] + 1], l0 = r->len[r->account_arg[0] + 1];
		size_t o1 = r->off[r->account_arg[1] + 1], l1 = r->len[r->account_arg[1] + 1];
		if (l0 == l1 && memcmp(s + o0, s + o1, l0) == 0)
			r->rc = ERR_SAME_ACCOUNT;
	}
}

static ref_result ref;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	/* exactly len + 1 + PARSE_SLACK bytes, so ASan sees any read past
	 * the slack the parser is promised */
	char *line = malloc(size + 1 + PARSE_SLACK);
	memcpy(line, data, size);
	memset(line + size, 0, 1 + PARSE_SLACK);

	bool blank = parse_blank(line, size);
	FUZZ_CHECK(memcmp(line, data, size) == 0, "parse_blank changed the line");

	cmd_parsed res;
	error_code rc = cmd_parse(line, size, &res);
	reference(s, size, &ref);

	for (size_t i = 1; i <= PARSE_SLACK; i++)
		FUZZ_CHECK(line[size + i] == 0, "byte %zu after the line written", i);
	FUZZ_CHECK(rc >= ERR_OK && rc < ERR_COUNT, "code %d", (int)rc);
	FUZZ_CHECK(rc == ref.rc, "cmd_parse says %d, the reference %d",
		   (int)rc, (int)ref.rc);
	FUZZ_CHECK(blank == (rc == ERR_OK && res.cmd == NULL),
		   "parse_blank %d, cmd_parse %d", blank, (int)rc);
	FUZZ_CHECK(res.name != NULL, "no name");

	switch (rc) {
	case ERR_LINE_TOO_LONG:
	case ERR_INVALID_INPUT:
		FUZZ_CHECK(res.cmd == NULL && res.name[0] == '\0' && res.arg.argc == 0,
			   "a rejected line reports a command");
		goto done;
	default:
		break;
	}
	FUZZ_CHECK(res.cmd == ref.cmd, "command %s, reference %s",
		   res.cmd ? res.cmd->name : "none", ref.cmd ? ref.cmd->name : "none");
	FUZZ_CHECK(strcmp(res.name, ref.name) == 0, "name '%s', reference '%s'",
		   res.name, ref.name);
	FUZZ_CHECK(res.arg.argc == ref.argc, "argc %d, reference %d", res.arg.argc, ref.argc);
	if (rc == ERR_OK && res.cmd == NULL)
		goto done;
	/* the arguments it kept are the tokens, NUL-terminated in the line */
	for (int a = 0; a < res.arg.argc && a < PARSE_MAX_ARGS; a++) {
		size_t o = ref.off[a + 1], l = ref.len[a + 1];
		FUZZ_CHECK(res.arg.argv[a] == line + o, "argv[%d] is not token %d", a, a + 1);
		FUZZ_CHECK(memcmp(res.arg.argv[a], s + o, l) == 0 && res.arg.argv[a][l] == '\0',
			   "argv[%d] differs", a);
		/* the public checkers agree with the reference on every token */
		int64_t v1 = 0, v2 = 0;
		FUZZ_CHECK(parse_account(res.arg.argv[a]) == ref_id(s + o, l),
			   "parse_account on '%s'", res.arg.argv[a]);
		bool ok1 = parse_amount(res.arg.argv[a], &v1), ok2 = ref_amount(s + o, l, &v2);
		FUZZ_CHECK(ok1 == ok2 && (!ok1 || v1 == v2), "parse_amount on '%s'",
			   res.arg.argv[a]);
	}
	if (rc == ERR_INVALID_ACCOUNT || rc == ERR_INVALID_AMOUNT)
		FUZZ_CHECK(res.arg.bad == ref.bad, "bad %d, reference %d", res.arg.bad, ref.bad);
	if (rc != ERR_OK && rc != ERR_SAME_ACCOUNT)
		goto done;

	/* accepted (or same_account): ids and amount are SPEC's */
	for (int k = 0; k < ref.naccounts; k++) {
		int a = ref.account_arg[k];
		FUZZ_CHECK(res.arg.account[k] == line + ref.off[a + 1], "account %d", k);
		FUZZ_CHECK(res.arg.account_len[k] == ref.len[a + 1] &&
			   strlen(res.arg.account[k]) == res.arg.account_len[k],
			   "account %d length", k);
		FUZZ_CHECK(ref_id(res.arg.account[k], res.arg.account_len[k]), "account %d id", k);
	}
	if (strchr(res.cmd->args, 'n')) {
		FUZZ_CHECK(res.arg.amount >= 1, "amount %lld", (long long)res.arg.amount);
		FUZZ_CHECK(res.arg.amount == ref.amount, "amount %lld, reference %lld",
			   (long long)res.arg.amount, (long long)ref.amount);
	}
done:
	free(line);
	return 0;
}
