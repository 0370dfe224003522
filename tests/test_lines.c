/* test_lines.c — the block line reader: endings, limits, bounded memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "simplecqrs/lines.h"
#include "unit.h"

#define LIMIT 4096	/* the shell's (LIMIT); the reader is told */
#define SLACK 8

/* A reader over a temporary file holding data[0..n), with a limit. */
static lines *over_max(const char *data, size_t n, size_t limit, FILE **keep)
{
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fflush(f);
	rewind(f);
	*keep = f;
	return lines_new(fileno(f), limit, SLACK, NULL, NULL);
}

static lines *over(const char *data, size_t n, FILE **keep)
{
	return over_max(data, n, LIMIT, keep);
}

static void expect(lines *r, const char *text, bool too_long)
{
	lines_line l;
	ck_assert_int_eq(lines_next(r, &l), 1);
	ck_assert_int_eq(l.too_long, too_long);
	ck_assert_uint_eq(l.len, strlen(text));
	ck_assert(memcmp(l.text, text, l.len) == 0);
}

START_TEST(endings)
{
	FILE *f;
	lines *r = over("a\r\n\nb c\nlast", 12, &f);
	expect(r, "a\r", false);	/* the parser drops the CR */
	expect(r, "", false);
	expect(r, "b c", false);
	expect(r, "last", false);	/* no final newline */
	lines_line l;
	ck_assert_int_eq(lines_next(r, &l), 0);
	ck_assert_int_eq(lines_next(r, &l), 0);
	lines_free(r);
	fclose(f);
}
END_TEST

START_TEST(overlong_lines_are_skipped_whole)
{
	size_t big = 3 * 1024 * 1024;	/* longer than the reader's block */
	char *data = malloc(big + 3 * LIMIT + 5100);
	size_t n = 0;
	memset(data, 'x', LIMIT + 1);	/* the longest kept */
	n += LIMIT + 1;
	data[n++] = '\n';
	memset(data + n, 'y', LIMIT + 2);	/* one too many */
	n += LIMIT + 2;
	data[n++] = '\n';
	memset(data + n, 'z', big);
	n += big;
	data[n++] = '\n';
	memcpy(data + n, "after\n", 6);
	n += 6;
	memset(data + n, 'w', 5000);	/* too long, and no newline */
	FILE *f;
	lines *r = over(data, n + 5000, &f);
	lines_line l;
	ck_assert_int_eq(lines_next(r, &l), 1);
	ck_assert_uint_eq(l.len, LIMIT + 1);
	ck_assert(!l.too_long);
	expect(r, "", true);
	expect(r, "", true);
	expect(r, "after", false);
	expect(r, "", true);
	ck_assert_int_eq(lines_next(r, &l), 0);
	lines_free(r);
	fclose(f);
	free(data);
}
END_TEST

START_TEST(the_limit_is_the_callers)
{
	FILE *f;
	/* limit 3: up to 4 bytes are handed over (a CR may be the 4th: the
	 * parser drops it, or finds the line too long), 5 are not */
	lines *r = over_max("abc\nabc\r\nabcd\nabcde\nab\nabcdefgh", 31, 3, &f);
	expect(r, "abc", false);
	expect(r, "abc\r", false);
	expect(r, "abcd", false);
	expect(r, "", true);
	expect(r, "ab", false);
	expect(r, "", true);	/* too long, and no newline */
	lines_line l;
	ck_assert_int_eq(lines_next(r, &l), 0);
	lines_free(r);
	fclose(f);
}
END_TEST

START_TEST(many_lines_across_blocks)
{
	size_t count = 300000;
	char *data = malloc(count * 8);
	size_t n = 0;
	for (size_t i = 0; i < count; i++)
		n += (size_t)sprintf(data + n, "%06zu\n", i);
	FILE *f;
	lines *r = over(data, n, &f);
	lines_line l;
	for (size_t i = 0; i < count; i++) {
		ck_assert_int_eq(lines_next(r, &l), 1);
		ck_assert_uint_eq(l.len, 6);
		l.text[l.len] = '\0';	/* allowed: text[len] is writable */
		ck_assert_uint_eq(strtoul(l.text, NULL, 10), i);
	}
	ck_assert_int_eq(lines_next(r, &l), 0);
	lines_free(r);
	fclose(f);
	free(data);
}
END_TEST

static bool count_call(void *ctx)
{
	(*(int *)ctx)++;
	return true;
}

static bool end_on_second_call(void *ctx)
{
	return ++*(int *)ctx < 2;
}

START_TEST(the_hook_can_end_the_input)
{
	int fds[2], calls = 0;
	ck_assert_int_eq(pipe(fds), 0);
	lines *r = lines_new(fds[0], LIMIT, SLACK, end_on_second_call, &calls);
	lines_line l;
	ck_assert_int_eq(write(fds[1], "a\nb", 3), 3);
	expect(r, "a", false);
	ck_assert_int_eq(write(fds[1], "\nc\n", 3), 3);
	/* the hook says no before the read that would finish b: the input
	 * ends there, b dropped, c never read */
	ck_assert_int_eq(lines_next(r, &l), 0);
	ck_assert_int_eq(calls, 2);
	ck_assert_int_eq(lines_next(r, &l), 0);
	lines_free(r);
	close(fds[1]);
	close(fds[0]);
}
END_TEST

START_TEST(the_hook_runs_before_each_read)
{
	int fds[2], calls = 0;
	ck_assert_int_eq(pipe(fds), 0);
	lines *r = lines_new(fds[0], LIMIT, SLACK, count_call, &calls);
	lines_line l;
	ck_assert_int_eq(write(fds[1], "a\nb\n", 4), 4);
	expect(r, "a", false);
	ck_assert_int_eq(calls, 1);
	expect(r, "b", false);	/* already buffered: no read, no call */
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(write(fds[1], "c\n", 2), 2);
	expect(r, "c", false);
	ck_assert_int_eq(calls, 2);
	close(fds[1]);
	ck_assert_int_eq(lines_next(r, &l), 0);
	lines_free(r);
	close(fds[0]);
}
END_TEST

START_TEST(read_errors_are_reported)
{
	lines *r = lines_new(-1, LIMIT, SLACK, NULL, NULL);
	lines_line l;
	ck_assert_int_eq(lines_next(r, &l), -1);
	lines_free(r);
	lines_free(NULL);
}
END_TEST

static Suite *lines_suite(void)
{
	Suite *s = suite_create("lines");
	TCase *t = tcase_create("read");
	tcase_add_test(t, endings);
	tcase_add_test(t, overlong_lines_are_skipped_whole);
	tcase_add_test(t, the_limit_is_the_callers);
	tcase_add_test(t, many_lines_across_blocks);
	tcase_add_test(t, read_errors_are_reported);
	tcase_add_test(t, the_hook_runs_before_each_read);
	tcase_add_test(t, the_hook_can_end_the_input);
	suite_add_tcase(s, t);
	return s;
}

UNIT_MAIN(lines_suite)
