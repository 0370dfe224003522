/* parse.c — the line's words and values. Pure: a line in, its tokens and
 * checked values, or the first error SPEC's order names, out. The line is
 * tokenised in place; which command it is, and how many arguments that
 * command takes, is cmd.c's to say. */
#include <string.h>
#include "simplecqrs/parse.h"

const unsigned char parse_id_bytes[256] = {
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

/* s[0..n) is an account id. Called with the length the tokeniser already
 * found, so the id is not walked a second time for its end. */
static bool valid_id(const char *s, size_t n)
{
	if (n == 0 || n > PARSE_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!parse_id_bytes[(unsigned char)s[i]])
			return false;
	return true;
}

/* Up to 18 digits cannot pass INT64_MAX (about 9.2e18), so only longer
 * amounts pay for overflow checks. */
#define AMOUNT_SAFE_DIGITS 18

/* s[0..n) is an amount: [1-9][0-9]*, at most INT64_MAX. */
static inline __attribute__((always_inline)) bool
valid_amount(const char *s, size_t n, int64_t *amount)
{
	if (n == 0 || s[0] < '1' || s[0] > '9')
		return false;
	int64_t v = 0;
	if (n <= AMOUNT_SAFE_DIGITS) {
		for (size_t i = 0; i < n; i++) {
			unsigned d = (unsigned char)s[i] - (unsigned)'0';
			if (d > 9)
				return false;
			v = v * 10 + (int64_t)d;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			unsigned d = (unsigned char)s[i] - (unsigned)'0';
			if (d > 9 || __builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, (int64_t)d, &v))
				return false;
		}
	}
	*amount = v;
	return true;
}

bool parse_account(const char *s)
{
	return valid_id(s, strlen(s));
}

bool parse_amount(const char *s, int64_t *amount)
{
	return valid_amount(s, strlen(s), amount);
}

#define ONES 0x0101010101010101ull

/* The first space, tab or NUL at or after p. Eight bytes at a time, a word
 * is tested for any byte below 0x21 with one subtract and mask (exact for
 * the first such byte, which is the only one looked at); the rare control
 * byte that is none of the three is stepped over. The NUL at the line's
 * end stops it, and PARSE_SLACK covers the overread. */
static char *token_end(char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (;;) {
		uint64_t w;
		memcpy(&w, p, 8);
		uint64_t low = (w - ONES * 0x21) & ~w & (ONES << 7);
		if (low == 0) {
			p += 8;
			continue;
		}
		p += __builtin_ctzll(low) >> 3;
		if (*p == ' ' || *p == '\t' || *p == '\0')
			return p;
		p++;
	}
#else
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	return p;
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

error_code parse_split(char *line, size_t len, parse_tokens *t)
{
	t->count = 0;
	size_t n = len;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n > PARSE_MAX_LINE)
		return memchr(line, '\0', len) ? ERR_INVALID_INPUT
						 : ERR_LINE_TOO_LONG;
	char *end = line + n;
	*end = '\0';

	/* Split on spaces and tabs; a token starting with '#' ends the line.
	 * Every token is counted, the first few kept. */
	int ntok = 0;
	char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			break;
		char *tok = p;
		p = token_end(p);
		if (ntok <= PARSE_MAX_ARGS) {
			t->tok[ntok] = tok;
			t->len[ntok] = (size_t)(p - tok);
		}
		ntok++;
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	/* The scan stops at any NUL, so where it stopped tells whether the
	 * line held one: that finds invalid_input without a pass of its own
	 * over every line. */
	if (*p == '#' ? memchr(p, '\0', (size_t)(end - p)) != NULL : p != end)
		return ERR_INVALID_INPUT;	/* nothing of the line is reported */
	t->count = ntok;
	return ERR_OK;
}

error_code parse_values(const char *kinds, const parse_tokens *t,
			parse_result *r)
{
	r->argc = t->count > 0 ? t->count - 1 : 0;
	r->account[0] = r->account[1] = NULL;
	r->amount = 0;
	r->bad = -1;
	int kept = r->argc < PARSE_MAX_ARGS ? r->argc : PARSE_MAX_ARGS;
	const size_t *arg_len = t->len + 1;
	for (int a = 0; a < kept; a++)
		r->argv[a] = t->tok[a + 1];
	/* One pass, left to right: in every kinds string the ids come before
	 * the amount (test_parse checks the table's), so this is SPEC's order. */
	int accounts = 0;
	for (int a = 0; a < kept && kinds[a] != '\0'; a++) {
		if (kinds[a] == 'a') {
			if (!valid_id(r->argv[a], arg_len[a])) {
				r->bad = a;
				return ERR_INVALID_ACCOUNT;
			}
			r->account[accounts] = r->argv[a];
			r->account_len[accounts++] = arg_len[a];
		} else if (kinds[a] == 'n' &&
			   !valid_amount(r->argv[a], arg_len[a], &r->amount)) {
			r->bad = a;
			return ERR_INVALID_AMOUNT;
		}
	}
	if (accounts == 2 && r->account_len[0] == r->account_len[1] &&
	    memcmp(r->account[0], r->account[1], r->account_len[0]) == 0)
		return ERR_SAME_ACCOUNT;
	return ERR_OK;
}
