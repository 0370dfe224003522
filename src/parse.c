/* parse.c — the line parser. Pure: a line in, a checked command or the first
 * error SPEC's order names out. The line is tokenised in place. */
#include <string.h>
#include "simplecqrs/cmd.h"
#include "simplecqrs/parse.h"

bool parse_account(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
		if (n == PARSE_MAX_ID)
			return false;
	}
	return n > 0;
}

bool parse_amount(const char *s, int64_t *amount)
{
	int64_t v = 0;
	if (s[0] < '1' || s[0] > '9')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, *p - '0', &v))
			return false;
	}
	*amount = v;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

error_code parse_line(char *line, size_t len, parse_result *res)
{
	memset(res, 0, sizeof *res);
	res->name = "";
	res->bad = -1;
	if (memchr(line, '\0', len))
		return ERR_INVALID_INPUT;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > PARSE_MAX_LINE)
		return ERR_LINE_TOO_LONG;
	line[len] = '\0';

	/* Split on spaces and tabs; a token starting with '#' ends the line.
	 * Every token is counted, the first few kept. */
	char *name = NULL;
	size_t i = 0;
	while (i < len) {
		while (i < len && is_space(line[i]))
			i++;
		if (i == len || line[i] == '#')
			break;
		char *tok = line + i;
		while (i < len && !is_space(line[i]))
			i++;
		line[i] = '\0';
		if (i < len)
			i++;
		if (name == NULL)
			name = tok;
		else if (res->argc++ < PARSE_MAX_ARGS)
			res->argv[res->argc - 1] = tok;
	}
	if (name == NULL)
		return ERR_OK;	/* blank or comment */
	for (char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	res->name = name;

	const cmd_entry *cmd = cmd_find(name);
	if (cmd == NULL)
		return ERR_UNKNOWN_COMMAND;
	res->cmd = cmd;
	if (res->argc < cmd->min_args || res->argc > cmd->max_args)
		return ERR_USAGE;
	int accounts = 0;
	for (int a = 0; a < res->argc; a++) {
		if (cmd->args[a] != 'a')
			continue;
		if (!parse_account(res->argv[a])) {
			res->bad = a;
			return ERR_INVALID_ACCOUNT;
		}
		res->account[accounts++] = res->argv[a];
	}
	for (int a = 0; a < res->argc; a++) {
		if (cmd->args[a] == 'n' && !parse_amount(res->argv[a], &res->amount)) {
			res->bad = a;
			return ERR_INVALID_AMOUNT;
		}
	}
	if (accounts == 2 && strcmp(res->account[0], res->account[1]) == 0)
		return ERR_SAME_ACCOUNT;
	return ERR_OK;
}
