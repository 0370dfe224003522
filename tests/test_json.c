/* test_json.c — JSON escaping of every control character, UTF-8 handling,
 * number formatting, and text-mode escaping for terminals. */
#include <stdio.h>
#include <string.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/json.h"
#include "simplecqrs/out.h"
#include "unit.h"

static buf b;

static const char *esc(const char *s, size_t n)
{
	b.len = 0;
	json_put_string(&b, s, n);
	return buf_cstr(&b);
}

static void teardown(void)
{
	buf_free(&b);
}

START_TEST(plain_text_is_quoted)
{
	ck_assert_str_eq(esc("XX1", 3), "\"XX1\"");
	ck_assert_str_eq(esc("", 0), "\"\"");
}
END_TEST

START_TEST(every_control_character_is_escaped)
{
	const char *named[32] = { ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n",
				  ['\r'] = "\\r", ['\t'] = "\\t" };
	for (int c = 0; c < 32; c++) {
		char in = (char)c, want[16];
		if (named[c])
			snprintf(want, sizeof want, "\"%s\"", named[c]);
		else
			snprintf(want, sizeof want, "\"\\u%04x\"", c);
		ck_assert_str_eq(esc(&in, 1), want);
	}
	ck_assert_str_eq(esc("\x7f", 1), "\"\\u007f\"");
	ck_assert_str_eq(esc("a\"b\\c/", 6), "\"a\\\"b\\\\c/\"");
}
END_TEST

START_TEST(valid_utf8_passes_invalid_becomes_replacement)
{
	ck_assert_str_eq(esc("caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
	ck_assert_str_eq(esc("\xe2\x82\xac", 3), "\"\xe2\x82\xac\"");	/* € */
	ck_assert_str_eq(esc("\xf0\x9f\x92\xb0", 4), "\"\xf0\x9f\x92\xb0\"");
	ck_assert_str_eq(esc("\xff", 1), "\"\\ufffd\"");
	ck_assert_str_eq(esc("\xc3", 1), "\"\\ufffd\"");		/* cut short */
	ck_assert_str_eq(esc("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");	/* overlong */
	ck_assert_str_eq(esc("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");	/* surrogate */
	ck_assert_str_eq(esc("\xf4\x90\x80\x80", 4),
			 "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");	/* past U+10FFFF */
}
END_TEST

START_TEST(integers_at_their_limits)
{
	b.len = 0;
	buf_put_i64(&b, INT64_MIN);
	buf_putc(&b, ' ');
	buf_put_i64(&b, INT64_MAX);
	buf_putc(&b, ' ');
	buf_put_u64(&b, UINT64_MAX);
	buf_putc(&b, ' ');
	buf_put_u64(&b, 0);
	ck_assert_str_eq(buf_cstr(&b), "-9223372036854775808 9223372036854775807 "
			 "18446744073709551615 0");
}
END_TEST

START_TEST(digits_match_printf)
{
	char got[24], want[24];
	uint64_t v = 1;
	for (uint64_t i = 0; i < 100000; i++) {	/* every small number */
		got[buf_fmt_u64(got, i)] = '\0';
		snprintf(want, sizeof want, "%llu", (unsigned long long)i);
		ck_assert_str_eq(got, want);
	}
	for (int k = 0; k < 20; k++, v *= 10) {	/* each power of ten, +-1 */
		for (uint64_t x = v - 1; x <= v + 1; x++) {
			got[buf_fmt_u64(got, x)] = '\0';
			snprintf(want, sizeof want, "%llu", (unsigned long long)x);
			ck_assert_str_eq(got, want);
		}
	}
	/* around 2^32, where the 32-bit steps take over, and a spread of
	 * every length (xorshift64, shifted to vary the length) */
	uint64_t seed = 88172645463325252ull;
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t x = UINT32_MAX - 50000 + i;
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		if (i & 1)
			x = seed >> (i % 64);
		got[buf_fmt_u64(got, x)] = '\0';
		snprintf(want, sizeof want, "%llu", (unsigned long long)x);
		ck_assert_str_eq(got, want);
	}
}
END_TEST

START_TEST(text_mode_never_echoes_control_bytes)
{
	b.len = 0;
	out_put_safe(&b, "a\x1b[31mb\\\x01\xff\xc3\xa9\n", 13);
	ck_assert_str_eq(buf_cstr(&b), "a\\x1b[31mb\\\\\\x01\\xff\xc3\xa9\\x0a");
}
END_TEST

START_TEST(buf_grows)
{
	b.len = 0;
	for (int i = 0; i < 100000; i++)
		buf_putc(&b, 'x');
	buf_fill(&b, 'y', 3);
	buf_printf(&b, "%d-%s", 42, "z");
	ck_assert_uint_eq(b.len, 100007);
	ck_assert_str_eq(buf_cstr(&b) + 100000, "yyy42-z");
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *t = tcase_create("escape");
	tcase_add_checked_fixture(t, NULL, teardown);
	tcase_add_test(t, plain_text_is_quoted);
	tcase_add_test(t, every_control_character_is_escaped);
	tcase_add_test(t, valid_utf8_passes_invalid_becomes_replacement);
	tcase_add_test(t, text_mode_never_echoes_control_bytes);
	suite_add_tcase(s, t);
	t = tcase_create("buf");
	tcase_add_checked_fixture(t, NULL, teardown);
	tcase_add_test(t, integers_at_their_limits);
	tcase_add_test(t, digits_match_printf);
	tcase_add_test(t, buf_grows);
	suite_add_tcase(s, t);
	return s;
}

UNIT_MAIN(json_suite)
