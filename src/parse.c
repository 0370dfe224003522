/* parse.c — the line parser. Pure: a line in, a checked command or the first
 * error SPEC's order names out. The line is tokenised in place. */
#include <string.h>
#include "simplecqrs/cmd.h"
#include "simplecqrs/parse.h"

/* The bytes an account id may hold: A-Z a-z 0-9 _ - . */
static const unsigned char id_byte[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
	['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
	['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
	['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
	['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
	['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
	['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

bool parse_account(const char *s)
{
	size_t n = 0;
	while (id_byte[(unsigned char)s[n]])
		n++;
	return n > 0 && n <= PARSE_MAX_ID && s[n] == '\0';
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

#define ONES 0x0101010101010101ull

/* The high bit of each byte of x that is zero (exact up to the first one,
 * which is all token_end needs). */
static inline uint64_t zero_bytes(uint64_t x)
{
	return (x - ONES) & ~x & (ONES << 7);
}

/* The first space, tab or NUL at or after p, eight bytes at a time: the NUL
 * at the line's end stops it, and PARSE_SLACK covers the overread. */
static char *token_end(char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (;; p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		uint64_t m = zero_bytes(w) | zero_bytes(w ^ (ONES * ' ')) |
			     zero_bytes(w ^ (ONES * '\t'));
		if (m)
			return p + (__builtin_ctzll(m) >> 3);
	}
#else
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	return p;
#endif
}

/* The command a token names, in any case. The slack lets a name of up to
 * eight bytes be read as one word. */
static const cmd_entry *find_command(const char *name, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (len == 0 || len > 8)
		return NULL;
	uint64_t w;
	memcpy(&w, name, 8);
	uint64_t keep = len == 8 ? ~0ull : (1ull << (8 * len)) - 1;
	return cmd_find_word((w | ONES * 0x20) & keep);
#else
	return cmd_find_len(name, len);
#endif
}

bool parse_blank(const char *line, size_t len)
{
	if (memchr(line, '\0', len))
		return false;	/* invalid_input */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > PARSE_MAX_LINE)
		return false;	/* line_too_long */
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i == len || line[i] == '#';
}

error_code parse_line(char *line, size_t len, parse_result *res)
{
	res->cmd = NULL;
	res->name = "";
	res->argc = 0;
	res->account[0] = res->account[1] = NULL;
	res->amount = 0;
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
	size_t name_len = 0;
	char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			break;
		char *tok = p;
		p = token_end(p);
		bool last = *p == '\0';
		*p++ = '\0';
		if (name == NULL) {
			name = tok;
			name_len = (size_t)(p - 1 - tok);
		}
		else if (res->argc++ < PARSE_MAX_ARGS)
			res->argv[res->argc - 1] = tok;
		if (last)
			break;
	}
	if (name == NULL)
		return ERR_OK;	/* blank or comment */

	const cmd_entry *cmd = find_command(name, name_len);
	if (cmd == NULL) {
		for (char *c = name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		res->name = name;
		return ERR_UNKNOWN_COMMAND;
	}
	res->cmd = cmd;
	res->name = cmd->name;
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
