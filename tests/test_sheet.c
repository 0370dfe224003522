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

/* A store that groups its writes, as sqlite and postgresql do, and keeps a
 * sheet, over a memory store: it counts the transactions store.c runs, and
 * its append or sheet save fails as told. store.c (and sheet_store.c) own
 * the group: the backend only begins, commits and rolls back. */
typedef struct grouping {
	struct store base;
	store *inner;
	int begins, commits, rollbacks;
	error_code append_says, save_says;	/* ERR_OK: does the work */
	error_code commit_says;			/* ERR_OK: commits */
	uint64_t checkpoint;
} grouping;

static error_code grp_append(store *st, const store_new_event *evs, size_t n,
			     int64_t t, uint64_t *last)
{
	grouping *g = (grouping *)st;
	ck_assert(st->in_group);	/* store_append opened it */
	if (g->append_says != ERR_OK)
		return g->append_says == ERR_STORAGE
		       ? store_base_fail(st, "the disk is full") : g->append_says;
	return store_append(g->inner, evs, n, t, last);
}

static error_code grp_read_all(store *st, uint64_t after, size_t limit,
			       store_event_fn fn, void *ctx)
{
	return store_read_all(((grouping *)st)->inner, after, limit, fn, ctx);
}

static error_code grp_head(store *st, uint64_t *head)
{
	return store_head(((grouping *)st)->inner, head);
}

static error_code grp_begin(store *st)
{
	((grouping *)st)->begins++;
	return ERR_OK;
}

static error_code grp_commit(store *st)
{
	grouping *g = (grouping *)st;
	if (g->commit_says != ERR_OK)
		return store_base_fail(st, "the disk is full");
	g->commits++;
	return ERR_OK;
}

static void grp_rollback(store *st)
{
	((grouping *)st)->rollbacks++;
}

static error_code grp_checkpoint(store *st, uint64_t *checkpoint)
{
	*checkpoint = ((grouping *)st)->checkpoint;
	return ERR_OK;
}

static error_code grp_load(store *st, uint64_t *checkpoint,
			   sheet_store_row_fn fn, void *ctx)
{
	(void)fn;
	(void)ctx;
	return grp_checkpoint(st, checkpoint);	/* rows are not the point */
}

static error_code grp_save(store *st, uint64_t from, uint64_t to,
			   const sheet_store_row *rows, size_t n, bool replace)
{
	grouping *g = (grouping *)st;
	(void)rows;
	(void)n;
	(void)replace;
	ck_assert(st->in_group);	/* sheet_store_save opened it */
	if (g->save_says != ERR_OK)
		return g->save_says == ERR_STORAGE
		       ? store_base_fail(st, "the disk is full") : g->save_says;
	if (from != g->checkpoint)
		return ERR_CONFLICT;
	g->checkpoint = to;
	return ERR_OK;
}

static const sheet_store_ops grp_sheet_ops = {
	.checkpoint = grp_checkpoint,
	.load = grp_load,
	.save = grp_save,
};

static const store_ops grp_ops = {
	.kind = "grouping",
	.append = grp_append,
	.read_all = grp_read_all,
	.head = grp_head,
	.begin = grp_begin,
	.commit = grp_commit,
	.rollback = grp_rollback,
	.sheet = &grp_sheet_ops,
};

static error_code grp_put(grouping *g, const char *id, uint64_t version)
{
	store_new_event ev = { .stream = id, .expected_version = version,
			       .type = EVENT_CREDITED, .amount = 5 };
	uint64_t last;
	return store_append(&g->base, &ev, 1, 1, &last);
}

START_TEST(the_store_owns_the_write_group)
{
	grouping g = { .base = { .ops = &grp_ops }, .inner = s };
	/* the first write opens the group, the next joins it */
	ck_assert_int_eq(grp_put(&g, "A", 0), ERR_OK);
	ck_assert_int_eq(grp_put(&g, "A", 1), ERR_OK);
	ck_assert_int_eq(g.begins, 1);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	ck_assert_int_eq(g.commits, 1);
	/* a conflict leaves the group as it was */
	g.append_says = ERR_CONFLICT;
	ck_assert_int_eq(grp_put(&g, "A", 2), ERR_CONFLICT);
	ck_assert_int_eq(g.rollbacks, 0);
	ck_assert(g.base.in_group);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	ck_assert_int_eq(g.commits, 2);
	/* a failure halfway loses the whole group, reported once */
	g.append_says = ERR_OK;
	ck_assert_int_eq(grp_put(&g, "A", 2), ERR_OK);
	g.append_says = ERR_STORAGE;
	ck_assert_int_eq(grp_put(&g, "A", 3), ERR_STORAGE);
	ck_assert_int_eq(g.rollbacks, 1);
	ck_assert_int_eq(store_commit(&g.base), ERR_STORAGE);
	ck_assert_str_eq(store_errmsg(&g.base), "the disk is full");
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	ck_assert_int_eq(g.commits, 2);
}
END_TEST

/* Between a loss and the commit that reports it, what is written opens a
 * new group: that commit rolls it back too, so nothing after the last
 * result shown is kept. */
START_TEST(the_commit_that_reports_a_loss_keeps_nothing_after_it)
{
	grouping g = { .base = { .ops = &grp_ops }, .inner = s };
	g.append_says = ERR_STORAGE;
	ck_assert_int_eq(grp_put(&g, "A", 0), ERR_STORAGE);
	ck_assert_int_eq(g.rollbacks, 1);
	g.append_says = ERR_OK;
	ck_assert_int_eq(grp_put(&g, "B", 0), ERR_OK);
	ck_assert_int_eq(g.begins, 2);
	ck_assert_int_eq(store_commit(&g.base), ERR_STORAGE);
	ck_assert_int_eq(g.rollbacks, 2);
	ck_assert(!g.base.in_group);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	ck_assert_int_eq(g.commits, 0);
}
END_TEST

/* A commit the store makes before the session's (a group grown full, the
 * start of a backup) holds the results of earlier commands: if it fails,
 * the next commit says so, so those results are never shown as kept. */
START_TEST(an_early_commit_that_fails_is_reported_at_the_next)
{
	grouping g = { .base = { .ops = &grp_ops }, .inner = s };
	ck_assert_int_eq(grp_put(&g, "A", 0), ERR_OK);
	g.commit_says = ERR_STORAGE;
	/* a group grown full commits in the append that filled it */
	uint64_t v = 1;
	error_code rc;
	while ((rc = grp_put(&g, "A", v)) == ERR_OK && v < 100000)
		v++;
	ck_assert_int_eq(rc, ERR_STORAGE);
	ck_assert_int_eq(g.rollbacks, 1);
	ck_assert(!g.base.in_group);
	ck_assert_int_eq(store_commit(&g.base), ERR_STORAGE);
	ck_assert_str_eq(store_errmsg(&g.base), "the disk is full");
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	/* a backup commits what was shown before it copies */
	ck_assert_int_eq(grp_put(&g, "B", 0), ERR_OK);
	char *path;
	uint64_t events;
	ck_assert_int_eq(store_backup(&g.base, "/nonexistent/copy.db", &path,
				      &events), ERR_STORAGE);
	ck_assert_ptr_null(path);
	ck_assert_int_eq(g.rollbacks, 2);
	ck_assert_int_eq(store_commit(&g.base), ERR_STORAGE);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	ck_assert_int_eq(g.commits, 0);
}
END_TEST

START_TEST(a_kept_sheet_saves_in_the_write_group)
{
	grouping g = { .base = { .ops = &grp_ops }, .inner = s };
	sheet *kept = sheet_new(sheet_store_of(&g.base));
	uint64_t applied;
	ck_assert_ptr_nonnull(sheet_store_of(&g.base));
	ck_assert_ptr_null(sheet_store_of(s));	/* memory keeps none */
	ck_assert_int_eq(grp_put(&g, "A", 0), ERR_OK);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	/* a save that fails loses its group, as an append does */
	g.save_says = ERR_STORAGE;
	ck_assert_int_eq(sheet_refresh(kept, &g.base, &applied), ERR_STORAGE);
	ck_assert_int_eq(g.begins, 2);
	ck_assert_int_eq(g.rollbacks, 1);
	ck_assert_int_eq(store_commit(&g.base), ERR_STORAGE);
	ck_assert_uint_eq(g.checkpoint, 0);
	/* a save that works joins the group, which the commit ends */
	g.save_says = ERR_OK;
	ck_assert_int_eq(sheet_refresh(kept, &g.base, &applied), ERR_OK);
	ck_assert_uint_eq(applied, 1);
	ck_assert_int_eq(g.begins, 3);
	ck_assert(g.base.in_group);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	ck_assert_uint_eq(g.checkpoint, 1);
	/* another shell moved the kept checkpoint: reloaded, and nothing
	 * rolled back */
	ck_assert_int_eq(grp_put(&g, "A", 1), ERR_OK);
	g.checkpoint = 2;
	ck_assert_int_eq(sheet_refresh(kept, &g.base, &applied), ERR_OK);
	ck_assert_uint_eq(sheet_checkpoint(kept), 2);
	ck_assert_int_eq(g.rollbacks, 1);
	ck_assert_int_eq(store_commit(&g.base), ERR_OK);
	sheet_free(kept);
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
	t = tcase_create("kept");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, the_store_owns_the_write_group);
	tcase_add_test(t, the_commit_that_reports_a_loss_keeps_nothing_after_it);
	tcase_add_test(t, an_early_commit_that_fails_is_reported_at_the_next);
	tcase_add_test(t, a_kept_sheet_saves_in_the_write_group);
	suite_add_tcase(su, t);
	return su;
}

UNIT_MAIN(sheet_suite)
