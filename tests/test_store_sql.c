/* test_store_sql.c — the SQL stores' algorithms (store_sql.c) over fake
 * primitives that write down the order they are called in: what only a
 * race between two shells would show on a real database. */
#include <string.h>
#include "store_sql.h"
#include "unit.h"

static char trace[256];
static error_code balances_says;

static void note(const char *step)
{
	if (trace[0])
		strcat(trace, ",");
	strcat(trace, step);
}

static error_code f_checkpoint(store *s, uint64_t *checkpoint)
{
	(void)s;
	note("checkpoint");
	*checkpoint = 7;
	return ERR_OK;
}

static error_code f_balances(store *s, sheet_store_row_fn fn, void *ctx)
{
	(void)s;
	note("balances");
	if (balances_says != ERR_OK)
		return balances_says;
	fn(ctx, "A", 5);
	return ERR_OK;
}

static error_code f_snapshot_begin(store *s)
{
	(void)s;
	note("begin");
	return ERR_OK;
}

static error_code f_snapshot_end(store *s, error_code rc)
{
	(void)s;
	note(rc == ERR_OK ? "end" : "end-failed");
	return rc;
}

static const store_sql_prims prims = {
	.checkpoint = f_checkpoint,
	.balances = f_balances,
	.snapshot_begin = f_snapshot_begin,
	.snapshot_end = f_snapshot_end,
};

static int row(void *ctx, const char *account, int64_t balance)
{
	(void)account;
	*(int64_t *)ctx += balance;
	return 0;
}

static void setup(void)
{
	trace[0] = '\0';
	balances_says = ERR_OK;
}

/* Another shell's refresh may commit between the two reads: outside a
 * group they are one read transaction, and its end hears the load's
 * answer; inside one, the group is the snapshot. */
START_TEST(a_load_reads_the_checkpoint_and_rows_from_one_snapshot)
{
	struct store st = { .in_group = false };
	store_sql_writer *w = store_sql_writer_new();
	uint64_t at = 0;
	int64_t sum = 0;
	ck_assert_int_eq(store_sql_sheet_load(&st, &prims, w, &at, row, &sum),
			 ERR_OK);
	ck_assert_str_eq(trace, "begin,checkpoint,balances,end");
	ck_assert_uint_eq(at, 7);
	ck_assert_int_eq(sum, 5);

	setup();
	balances_says = ERR_STORAGE;
	ck_assert_int_eq(store_sql_sheet_load(&st, &prims, w, &at, row, &sum),
			 ERR_STORAGE);
	ck_assert_str_eq(trace, "begin,checkpoint,balances,end-failed");

	setup();
	st.in_group = true;
	ck_assert_int_eq(store_sql_sheet_load(&st, &prims, w, &at, row, &sum),
			 ERR_OK);
	ck_assert_str_eq(trace, "checkpoint,balances");
	store_sql_writer_free(w);
}
END_TEST

static Suite *store_sql_suite(void)
{
	Suite *su = suite_create("store_sql");
	TCase *t = tcase_create("load");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_add_test(t, a_load_reads_the_checkpoint_and_rows_from_one_snapshot);
	suite_add_tcase(su, t);
	return su;
}

UNIT_MAIN(store_sql_suite)
