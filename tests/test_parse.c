/* test_parse.c — the line parser (parse.h: tokens and values) and reading
 * a line as a command (cmd_parse, cmd_find) against every input rule and
 * error code. */
#include <string.h>
#include "simplecqrs/cmd.h"
#include "simplecqrs/parse.h"
#include "unit.h"

static char line[8192];
static cmd_parsed res;

/* Reads a copy of s (which may hold NULs, hence the length) as a command. */
static error_code parse_n(const char *s, size_t n)
{
	ck_assert_uint_lt(n, sizeof line);
	memcpy(line, s, n);
	return cmd_parse(line, n, &res);
}

static error_code parse(const char *s)
{
	return parse_n(s, strlen(s));
}

START_TEST(blank_and_comment_lines_do_nothing)
{
	const char *blanks[] = { "", " ", "\t \t", "\r", "# note", "   # x y z",
				 "\t#", " \t # deposit A 1\r" };
	for (size_t i = 0; i < sizeof blanks / sizeof *blanks; i++) {
		ck_assert_int_eq(parse(blanks[i]), ERR_OK);
		ck_assert_ptr_null(res.cmd);
		ck_assert_str_eq(res.name, "");
	}
}
END_TEST

START_TEST(parse_blank_agrees_with_parse_split)
{
	const char *lines[] = { "", " ", "\t#x", "# a", "\r", "\r\r", " \r",
				"deposit A 1", "  x # y", "#", "\r#", "a\r",
				" \t \r" };
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
		size_t n = strlen(lines[i]);
		bool blank = parse_blank(lines[i], n);
		memcpy(line, lines[i], n);
		parse_tokens t;
		error_code rc = parse_split(line, n, &t);
		ck_assert_msg(blank == (rc == ERR_OK && t.count == 0),
			      "line %zu", i);
		rc = parse(lines[i]);
		ck_assert_msg(blank == (rc == ERR_OK && res.cmd == NULL),
			      "line %zu", i);
	}
	ck_assert(!parse_blank("# \0x", 4));	/* NUL: invalid_input */
	char big[PARSE_MAX_LINE + 2];
	memset(big, ' ', sizeof big);
	ck_assert(!parse_blank(big, sizeof big));	/* too long */
}
END_TEST

START_TEST(deposit_parses)
{
	ck_assert_int_eq(parse("deposit XX1 1000"), ERR_OK);
	ck_assert_str_eq(res.cmd->name, "deposit");
	ck_assert_str_eq(res.arg.account[0], "XX1");
	ck_assert_int_eq(res.arg.amount, 1000);
	ck_assert_int_eq(res.arg.argc, 2);
}
END_TEST

START_TEST(keywords_fold_case_ids_do_not)
{
	ck_assert_int_eq(parse("DePoSiT Ab 5"), ERR_OK);
	ck_assert_str_eq(res.cmd->name, "deposit");
	ck_assert_str_eq(res.arg.account[0], "Ab");
	ck_assert_int_eq(parse("REFRESH"), ERR_OK);
	ck_assert_str_eq(res.cmd->name, "refresh");
}
END_TEST

START_TEST(tabs_spaces_and_crlf_separate)
{
	ck_assert_int_eq(parse("\ttransfer \t A\t\tB   7 \r"), ERR_OK);
	ck_assert_str_eq(res.cmd->name, "transfer");
	ck_assert_str_eq(res.arg.account[0], "A");
	ck_assert_str_eq(res.arg.account[1], "B");
	ck_assert_int_eq(res.arg.amount, 7);
	/* only one trailing CR is dropped; another is part of the token */
	ck_assert_int_eq(parse("deposit A 7\r\r"), ERR_INVALID_AMOUNT);
	/* other white space is not a separator */
	ck_assert_int_eq(parse("deposit\vA 7"), ERR_UNKNOWN_COMMAND);
}
END_TEST

START_TEST(hash_starts_a_comment_only_at_a_token)
{
	ck_assert_int_eq(parse("deposit A 5 # five"), ERR_OK);
	ck_assert_int_eq(res.arg.amount, 5);
	ck_assert_int_eq(parse("deposit A 5#x"), ERR_INVALID_AMOUNT);
	ck_assert_int_eq(parse("deposit A#b 5"), ERR_INVALID_ACCOUNT);
	ck_assert_int_eq(parse("deposit A #5"), ERR_USAGE);
}
END_TEST

START_TEST(argument_count_is_usage)
{
	const char *bad[] = { "deposit", "deposit A", "deposit A 1 2",
			      "withdraw A", "transfer A B", "transfer A B 1 2",
			      "refresh now", "balances x", "balance",
			      "balance A B", "history", "status x", "rebuild 1",
			      "help a b", "quit now", "exit 0" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(parse(bad[i]) == ERR_USAGE, "%s", bad[i]);
	/* the count comes first: bad ids and amounts are not looked at */
	ck_assert_int_eq(parse("deposit a/b"), ERR_USAGE);
	ck_assert_int_eq(parse("deposit a/b 0 x y z"), ERR_USAGE);
	ck_assert_int_eq(res.arg.argc, 5);
}
END_TEST

START_TEST(account_ids)
{
	char id[80];
	memset(id, 'x', 64);
	id[64] = '\0';
	ck_assert(parse_account(id));
	id[64] = 'y';
	id[65] = '\0';
	ck_assert(!parse_account(id));
	ck_assert(parse_account("Az09_-."));
	ck_assert(parse_account("a"));
	ck_assert(!parse_account(""));
	const char *bad[] = { "a/b", "a b", "é", "a\x1b", "a;drop", "'", "a,b" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(!parse_account(bad[i]), "%s", bad[i]);
	/* every length, with one bad byte in each place */
	for (size_t n = 1; n <= 64; n++) {
		memset(id, 'q', n);
		id[n] = '\0';
		ck_assert(parse_account(id));
		for (size_t at = 0; at < n; at++) {
			id[at] = at % 2 ? '/' : '\xff';
			ck_assert_msg(!parse_account(id), "%zu %zu", n, at);
			id[at] = 'q';
		}
	}
}
END_TEST

START_TEST(amounts)
{
	int64_t v;
	ck_assert(parse_amount("1", &v));
	ck_assert_int_eq(v, 1);
	ck_assert(parse_amount("9223372036854775807", &v));
	ck_assert_int_eq(v, INT64_MAX);
	const char *bad[] = { "0", "-1", "+1", "1.00", "1.", ".5", "007", "01",
			      "1e3", "1_000", "1,000", "0x10", "12a", " 1", "",
			      "9223372036854775808", "18446744073709551616",
			      "99999999999999999999999" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(!parse_amount(bad[i], &v), "%s", bad[i]);
}
END_TEST

START_TEST(checks_come_in_spec_order)
{
	ck_assert_int_eq(parse("transfer a/b c/d 0"), ERR_INVALID_ACCOUNT);
	ck_assert_int_eq(res.arg.bad, 0);
	ck_assert_int_eq(parse("transfer A c/d 0"), ERR_INVALID_ACCOUNT);
	ck_assert_int_eq(res.arg.bad, 1);
	ck_assert_int_eq(parse("transfer A A 0"), ERR_INVALID_AMOUNT);
	ck_assert_int_eq(res.arg.bad, 2);
	ck_assert_int_eq(parse("transfer A A 5"), ERR_SAME_ACCOUNT);
	ck_assert_int_eq(parse("transfer A a 5"), ERR_OK);
	ck_assert_int_eq(parse("withdraw a/b 0"), ERR_INVALID_ACCOUNT);
	ck_assert_int_eq(parse("balance a/b"), ERR_INVALID_ACCOUNT);
	ck_assert_int_eq(parse("history -"), ERR_OK);
}
END_TEST

START_TEST(unknown_command_is_named_in_lower_case)
{
	ck_assert_int_eq(parse("FrobNicate 1 2"), ERR_UNKNOWN_COMMAND);
	ck_assert_str_eq(res.name, "frobnicate");
	ck_assert_ptr_null(res.cmd);
	ck_assert_int_eq(parse("   Deposits A 1"), ERR_UNKNOWN_COMMAND);
	ck_assert_str_eq(res.name, "deposits");
	/* names are matched a word at a time: near misses of every length */
	const char *near[] = { "deposi", "{eposit", "d\xc5posit", "withdrawx",
			       "transfe", "TRANSFER2", "quitquit", "e", "exi",
			       "balancez", "\177efresh", "statuS_" };
	for (size_t i = 0; i < sizeof near / sizeof *near; i++)
		ck_assert_msg(parse(near[i]) == ERR_UNKNOWN_COMMAND, "%s", near[i]);
	const char *names[] = { "TRANSFER A B 1", "Balances", "EXIT", "hElP",
				"withdraw A 1", "quit" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		ck_assert_msg(parse(names[i]) == ERR_OK, "%s", names[i]);
}
END_TEST

START_TEST(line_length_limit)
{
	char big[PARSE_MAX_LINE + 3];
	/* exactly the limit is fine, with or without a CR after it */
	memset(big, ' ', sizeof big);
	memcpy(big, "status", 6);
	ck_assert_int_eq(parse_n(big, PARSE_MAX_LINE), ERR_OK);
	ck_assert_str_eq(res.cmd->name, "status");
	big[PARSE_MAX_LINE] = '\r';
	ck_assert_int_eq(parse_n(big, PARSE_MAX_LINE + 1), ERR_OK);
	memset(big, ' ', sizeof big);
	memcpy(big, "status", 6);
	ck_assert_int_eq(parse_n(big, PARSE_MAX_LINE + 1), ERR_LINE_TOO_LONG);
	ck_assert_str_eq(res.name, "");
}
END_TEST

START_TEST(nul_byte_is_invalid_input)
{
	ck_assert_int_eq(parse_n("deposit A\0 1", 11), ERR_INVALID_INPUT);
	ck_assert_str_eq(res.name, "");
	ck_assert_int_eq(parse_n("\0", 1), ERR_INVALID_INPUT);
}
END_TEST

START_TEST(split_counts_every_token_and_keeps_the_first)
{
	char l[64] = "  a\tbb  c d e # f g";
	parse_tokens t;
	ck_assert_int_eq(parse_split(l, strlen(l), &t), ERR_OK);
	ck_assert_int_eq(t.count, 5);
	const char *want[] = { "a", "bb", "c", "d" };
	for (int i = 0; i <= PARSE_MAX_ARGS; i++) {
		ck_assert_str_eq(t.tok[i], want[i]);
		ck_assert_uint_eq(t.len[i], strlen(want[i]));
		ck_assert(t.tok[i] >= l && t.tok[i] < l + sizeof l);	/* in place */
	}
	strcpy(l, "x\0y");
	ck_assert_int_eq(parse_split(l, 3, &t), ERR_INVALID_INPUT);
	ck_assert_int_eq(t.count, 0);
}
END_TEST

START_TEST(values_follow_the_kinds_given)
{
	/* parse.h knows no command: the kinds say what each argument is */
	char l[64];
	parse_tokens t;
	parse_result r;
	strcpy(l, "x A/ B 0");
	ck_assert_int_eq(parse_split(l, strlen(l), &t), ERR_OK);
	ck_assert_int_eq(parse_values("aan", &t, &r), ERR_INVALID_ACCOUNT);
	ck_assert_int_eq(r.bad, 0);
	ck_assert_int_eq(parse_values("fan", &t, &r), ERR_INVALID_AMOUNT);
	ck_assert_int_eq(r.bad, 2);
	ck_assert_str_eq(r.account[0], "B");
	ck_assert_int_eq(parse_values("", &t, &r), ERR_OK);	/* none checked */
	ck_assert_int_eq(r.argc, 3);
	ck_assert_str_eq(r.argv[0], "A/");
	ck_assert_str_eq(r.argv[2], "0");
	strcpy(l, "x B B 12");
	ck_assert_int_eq(parse_split(l, strlen(l), &t), ERR_OK);
	ck_assert_int_eq(parse_values("aan", &t, &r), ERR_SAME_ACCOUNT);
	ck_assert_int_eq(parse_values("fan", &t, &r), ERR_OK);
	ck_assert_int_eq(r.amount, 12);
	ck_assert_uint_eq(r.account_len[0], 1);
	ck_assert_ptr_null(r.account[1]);
}
END_TEST

START_TEST(every_table_row_is_found_and_consistent)
{
	for (size_t i = 0; i < cmd_table_len; i++) {
		const cmd_entry *c = cmd_table[i];
		ck_assert_ptr_eq(cmd_find(c->name), c);
		ck_assert_int_le(c->min_args, c->max_args);
		ck_assert_int_le(c->max_args, PARSE_MAX_ARGS);
		ck_assert_int_eq((int)strlen(c->args), c->max_args);
		ck_assert_ptr_nonnull(c->exec);
		ck_assert(strncmp(c->usage, c->name, strlen(c->name)) == 0);
		ck_assert_uint_le(strlen(c->name), 8);	/* one word each */
		ck_assert_uint_lt(cmd_table_len, 32);
		/* ids before the amount: the parser checks in one pass */
		const char *n = strchr(c->args, 'n');
		ck_assert(n == NULL || strchr(n, 'a') == NULL);
	}
	/* any case, but nothing else */
	ck_assert_ptr_eq(cmd_find("DePoSiT"), cmd_table[0]);
	const char *near[] = { "deposi", "deposits", "deposit ", "{eposit",
			       "deposi\x14", "d\xc5posit", "DEP", "", "@" };
	for (size_t i = 0; i < sizeof near / sizeof *near; i++)
		ck_assert_msg(cmd_find(near[i]) == NULL, "%s", near[i]);
}
END_TEST

START_TEST(suggestions)
{
	ck_assert_str_eq(cmd_suggest("depost")->name, "deposit");
	ck_assert_str_eq(cmd_suggest("withdrwa")->name, "withdraw");
	ck_assert_str_eq(cmd_suggest("balnce")->name, "balance");
	ck_assert_ptr_null(cmd_suggest("frobnicate"));
	ck_assert_ptr_null(cmd_suggest("x"));
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *t;

	t = tcase_create("tokens");
	tcase_add_test(t, blank_and_comment_lines_do_nothing);
	tcase_add_test(t, parse_blank_agrees_with_parse_split);
	tcase_add_test(t, deposit_parses);
	tcase_add_test(t, keywords_fold_case_ids_do_not);
	tcase_add_test(t, tabs_spaces_and_crlf_separate);
	tcase_add_test(t, hash_starts_a_comment_only_at_a_token);
	suite_add_tcase(s, t);

	t = tcase_create("arguments");
	tcase_add_test(t, argument_count_is_usage);
	tcase_add_test(t, account_ids);
	tcase_add_test(t, amounts);
	tcase_add_test(t, checks_come_in_spec_order);
	tcase_add_test(t, unknown_command_is_named_in_lower_case);
	suite_add_tcase(s, t);

	t = tcase_create("lines");
	tcase_add_test(t, line_length_limit);
	tcase_add_test(t, nul_byte_is_invalid_input);
	tcase_add_test(t, split_counts_every_token_and_keeps_the_first);
	tcase_add_test(t, values_follow_the_kinds_given);
	suite_add_tcase(s, t);

	t = tcase_create("table");
	tcase_add_test(t, every_table_row_is_found_and_consistent);
	tcase_add_test(t, suggestions);
	suite_add_tcase(s, t);
	return s;
}

UNIT_MAIN(parse_suite)
