/* test_sheet.c — the balance sheet: checkpoint, lag, refresh, rebuild. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/handler.h"
#include "simplecqrs/sheet.h"
#include "store_impl.h"
#include "unit.h"

static store *s;
static handler *h;
static sheet *sh;

static void setup(void)
{
	char why[64];
	ck_assert_int_eq(store_open("memory", &s, why, sizeof why), 0);
	h = handler_new(s);
	sh = sheet_new(sheet_store_of(s));
}

static void teardown(void)
{
	sheet_free(sh);
	handler_free(h);
	store_free(s);
}

static void dep(const char *id, int64_t amount)
{
	handler_result r;
	ck_assert_int_eq(handler_deposit(h, id, strlen(id), amount, &r), ERR_OK);
}

static uint64_t behind(void)
{
	uint64_t n;
	ck_assert_int_eq(store_count_after(s, sheet_checkpoint(sh), &n), ERR_OK);
	return n;
}

static int64_t bal(const char *id)
{
	int64_t b = -1;
	ck_assert_msg(sheet_balance(sh, id, &b), "no %s", id);
	return b;
}

START_TEST(commands_do_not_move_the_sheet)
{
	int64_t b;
	dep("A", 5);
	ck_assert_uint_eq(sheet_checkpoint(sh), 0);
	ck_assert(!sheet_balance(sh, "A", &b));
	ck_assert_uint_eq(behind(), 1);
	ck_assert_uint_eq(sheet_count(sh), 0);
}
END_TEST

START_TEST(refresh_applies_exactly_the_events_after_the_checkpoint)
{
	uint64_t applied;
	handler_result r;
	dep("A", 5);
	dep("B", 7);
	ck_assert_int_eq(sheet_refresh(sh, s, &applied), ERR_OK);
	ck_assert_uint_eq(applied, 2);
	ck_assert_uint_eq(sheet_checkpoint(sh), 2);
	ck_assert_uint_eq(behind(), 0);
	ck_assert_int_eq(handler_transfer(h, "A", 1, "B", 1, 5, &r), ERR_OK);
	dep("C", 1);
	ck_assert_uint_eq(behind(), 3);
	ck_assert_int_eq(bal("A"), 5);	/* still the old figure */
	ck_assert_int_eq(sheet_refresh(sh, s, &applied), ERR_OK);
	ck_assert_uint_eq(applied, 3);
	ck_assert_int_eq(bal("A"), 0);
	ck_assert_int_eq(bal("B"), 12);
	ck_assert_int_eq(bal("C"), 1);
	ck_assert_int_eq(sheet_refresh(sh, s, &applied), ERR_OK);
	ck_assert_uint_eq(applied, 0);
	ck_assert_uint_eq(sheet_checkpoint(sh), 5);
}
END_TEST

START_TEST(rebuild_replays_everything)
{
	uint64_t applied;
	dep("A", 5);
	sheet_refresh(sh, s, &applied);
	dep("A", 6);
	ck_assert_int_eq(sheet_rebuild(sh, s, &applied), ERR_OK);
	ck_assert_uint_eq(applied, 2);
	ck_assert_uint_eq(sheet_checkpoint(sh), 2);
	ck_assert_int_eq(bal("A"), 11);
	ck_assert_uint_eq(sheet_count(sh), 1);
}
END_TEST

START_TEST(refresh_reads_in_batches)
{
	uint64_t applied;
	char id[16];
	for (int i = 0; i < 10000; i++) {
		snprintf(id, sizeof id, "acct%d", i % 97);
		dep(id, 1);
	}
	ck_assert_int_eq(sheet_refresh(sh, s, &applied), ERR_OK);
	ck_assert_uint_eq(applied, 10000);
	ck_assert_uint_eq(sheet_checkpoint(sh), 10000);
	ck_assert_uint_eq(sheet_count(sh), 97);
	ck_assert_int_eq(bal("acct0"), 104);	/* 0, 97, …, 9991 */
	ck_assert_int_eq(bal("acct96"), 103);
}
END_TEST

START_TEST(rows_sort_bytewise)
{
	uint64_t applied;
	const char *ids[] = { "a", "_", "B", "0", "-.", "Ab", "A" };
	for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
		dep(ids[i], (int64_t)i + 1);
	sheet_refresh(sh, s, &applied);
	size_t n;
	sheet_row *rows = sheet_sorted(sh, &n);
	const char *want[] = { "-.", "0", "A", "Ab", "B", "_", "a" };
	ck_assert_uint_eq(n, 7);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(rows[i].account, want[i]);
	ck_assert_int_eq(rows[0].balance, 5);
	free(rows);
}
END_TEST

/* A store that hands out the memory store's events without stream keys, as
 * a store with no numbers for its streams would. */
typedef struct keyless {
	struct store base;
	store *inner;
	store_event_fn fn;
	void *ctx;
} keyless;

static int strip_key(void *vctx, const store_event *ev)
{
	keyless *k = vctx;
	store_event copy = *ev;
	copy.stream_key = 0;
	return k->fn(k->ctx, &copy);
}

static error_code keyless_read_all(store *st, uint64_t after, size_t limit,
				   store_event_fn fn, void *ctx)
{
	keyless *k = (keyless *)st;
	k->fn = fn;
	k->ctx = ctx;
	return store_read_all(k->inner, after, limit, strip_key, k);
}

START_TEST(stream_keys_are_only_a_shortcut)
{
	static const store_ops ops = { .kind = "keyless", .read_all = keyless_read_all };
	keyless k = { .base = { .ops = &ops }, .inner = s };
	sheet *plain = sheet_new(NULL);
	handler_result r;
	uint64_t a1, a2;
	char id[16];
	for (int i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "k%d", (i * 7) % 101);
		dep(id, i + 1);
		if (i % 3 == 0)
			handler_withdraw(h, id, strlen(id), 1, &r);
		if (i % 500 == 0) {	/* refresh both part way, often */
			sheet_refresh(sh, s, &a1);
			sheet_refresh(plain, &k.base, &a2);
			ck_assert_uint_eq(a1, a2);
		}
	}
	ck_assert_int_eq(sheet_refresh(sh, s, &a1), ERR_OK);
	ck_assert_int_eq(sheet_refresh(plain, &k.base, &a2), ERR_OK);
	size_t n1, n2;
	sheet_row *r1 = sheet_sorted(sh, &n1), *r2 = sheet_sorted(plain, &n2);
	ck_assert_uint_eq(n1, 101);
	ck_assert_uint_eq(n1, n2);
	for (size_t i = 0; i < n1; i++) {
		ck_assert_str_eq(r1[i].account, r2[i].account);
		ck_assert_int_eq(r1[i].balance, r2[i].balance);
	}
	ck_assert_uint_eq(sheet_checkpoint(sh), sheet_checkpoint(plain));
	free(r1);
	free(r2);
	sheet_free(plain);
}
END_TEST

static Suite *sheet_suite(void)
{
	Suite *su = suite_create("sheet");
	TCase *t = tcase_create("checkpoint");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, commands_do_not_move_the_sheet);
	tcase_add_test(t, refresh_applies_exactly_the_events_after_the_checkpoint);
	tcase_add_test(t, rebuild_replays_everything);
	tcase_add_test(t, refresh_reads_in_batches);
	suite_add_tcase(su, t);
	t = tcase_create("rows");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, rows_sort_bytewise);
	tcase_add_test(t, stream_keys_are_only_a_shortcut);
	suite_add_tcase(su, t);
	return su;
}

UNIT_MAIN(sheet_suite)
