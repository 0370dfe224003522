/* test_handler.c — the write side: results, atomic transfers, and the
 * conflict path. One shell never races itself, so a wrapping store plays
 * the other writer: it slips an event in just before the handler's append. */
#include <string.h>
#include "simplecqrs/handler.h"
#include "store_impl.h"
#include "unit.h"

/* A store that forwards to a memory store, but before each of the next
 * `races` appends first appends `rival` itself, at the right version. */
typedef struct racing {
	struct store base;
	store *inner;
	int races;
	int race_after;		/* appends to let through before racing */
	int appends_seen;
	int reads;		/* read_stream calls */
	int events_read;	/* events those calls handed back */
	store_new_event rival;
} racing;

/* An event for the rival to append; race_append sets its version. */
static store_new_event rival_event(const char *stream, event_type type,
				   int64_t amount)
{
	return (store_new_event){ .stream = stream, .type = type,
				  .amount = amount };
}

static int last_version(void *ctx, const store_event *ev)
{
	*(uint64_t *)ctx = ev->version;
	return 0;
}

static error_code race_append(store *s, const store_new_event *evs, size_t n,
			      int64_t t, uint64_t *last)
{
	racing *r = (racing *)s;
	r->appends_seen++;
	if (r->race_after > 0) {
		r->race_after--;
	} else if (r->races > 0) {
		r->races--;
		store_new_event e = r->rival;
		uint64_t pos;
		store_read_stream(r->inner, e.stream, 0, last_version,
				  &e.expected_version);
		ck_assert_int_eq(store_append(r->inner, &e, 1, t, &pos), ERR_OK);
	}
	return store_append(r->inner, evs, n, t, last);
}

typedef struct counted {
	store_event_fn fn;
	void *ctx;
	int *n;
} counted;

static int count_event(void *ctx, const store_event *ev)
{
	counted *c = ctx;
	(*c->n)++;
	return c->fn(c->ctx, ev);
}

static error_code race_read_stream(store *s, const char *id, uint64_t after,
				   store_event_fn fn, void *ctx)
{
	racing *r = (racing *)s;
	r->reads++;
	counted c = { fn, ctx, &r->events_read };
	return store_read_stream(r->inner, id, after, count_event, &c);
}

static error_code race_stream_state(store *s, const char *id, size_t len,
				    uint32_t *key, uint64_t *version,
				    int64_t *balance)
{
	return store_stream_state(((racing *)s)->inner, id, len, key, version,
				  balance);
}

static error_code race_read_all(store *s, uint64_t after, size_t limit,
				store_event_fn fn, void *ctx)
{
	return store_read_all(((racing *)s)->inner, after, limit, fn, ctx);
}

static error_code race_head(store *s, uint64_t *h)
{
	return store_head(((racing *)s)->inner, h);
}

static error_code race_stream_count(store *s, uint64_t *n)
{
	return store_stream_count(((racing *)s)->inner, n);
}

static error_code race_streams(store *s, const char *prefix,
			       store_stream_fn fn, void *ctx)
{
	return store_streams(((racing *)s)->inner, prefix, fn, ctx);
}

static void race_free(store *s)
{
	store_free(((racing *)s)->inner);
}

static const store_ops racing_ops = {
	.kind = "racing",
	.free = race_free,
	.append = race_append,
	.read_stream = race_read_stream,
	.stream_state = race_stream_state,
	.read_all = race_read_all,
	.head = race_head,
	.stream_count = race_stream_count,
	.streams = race_streams,
};

static racing rs;
static handler *h;

static int64_t fixed_clock(void)
{
	return 1700000000123;
}

static void setup(void)
{
	char why[64];
	memset(&rs, 0, sizeof rs);
	rs.base.ops = &racing_ops;
	ck_assert_int_eq(store_open("memory", &rs.inner, why, sizeof why), 0);
	h = handler_new(&rs.base);
	handler_set_clock(h, fixed_clock);
}

static void teardown(void)
{
	handler_free(h);
	store_free(&rs.base);
}

static uint64_t head(void)
{
	uint64_t n;
	store_head(&rs.base, &n);
	return n;
}

START_TEST(deposit_withdraw_transfer_results)
{
	handler_result res;
	ck_assert_int_eq(handler_deposit(h, "XX1", 3, 1000, &res), ERR_OK);
	ck_assert_uint_eq(res.version, 1);
	ck_assert_uint_eq(res.position, 1);
	ck_assert_int_eq(handler_withdraw(h, "XX1", 3, 300, &res), ERR_OK);
	ck_assert_uint_eq(res.version, 2);
	ck_assert_uint_eq(res.position, 2);
	ck_assert_int_eq(handler_transfer(h, "XX1", 3, "XX2", 3, 700, &res), ERR_OK);
	ck_assert_uint_eq(res.position, 4);
	ck_assert_int_eq(handler_withdraw(h, "XX1", 3, 1, &res),
			 ERR_INSUFFICIENT_FUNDS);
	ck_assert_int_eq(res.balance, 0);
	ck_assert_int_eq(handler_withdraw(h, "nobody", 6, 1, &res),
			 ERR_UNKNOWN_ACCOUNT);
	ck_assert_int_eq(handler_transfer(h, "nobody", 6, "XX1", 3, 1, &res),
			 ERR_UNKNOWN_ACCOUNT);
	ck_assert_int_eq(handler_transfer(h, "XX2", 3, "XX2", 3, 1, &res),
			 ERR_SAME_ACCOUNT);
	ck_assert_uint_eq(head(), 4);
}
END_TEST

START_TEST(transfer_is_both_events_or_neither)
{
	handler_result res;
	handler_deposit(h, "A", 1, 10, &res);
	handler_deposit(h, "B", 1, INT64_MAX - 5, &res);
	/* B cannot take 6 more: neither A's debit nor B's credit happens */
	ck_assert_int_eq(handler_transfer(h, "A", 1, "B", 1, 6, &res), ERR_OVERFLOW);
	ck_assert_int_eq(res.balance, INT64_MAX - 5);
	ck_assert_int_eq(handler_transfer(h, "A", 1, "B", 1, 11, &res),
			 ERR_INSUFFICIENT_FUNDS);
	ck_assert_uint_eq(head(), 2);
	ck_assert_int_eq(handler_transfer(h, "A", 1, "B", 1, 5, &res), ERR_OK);
	ck_assert_uint_eq(head(), 4);
	ck_assert_int_eq(handler_deposit(h, "B", 1, 1, &res), ERR_OVERFLOW);
}
END_TEST

START_TEST(a_lost_race_is_retried_and_redecided)
{
	handler_result res;
	handler_deposit(h, "A", 1, 100, &res);
	/* another writer takes 60 between our read and our append */
	rs.rival = rival_event("A", EVENT_DEBITED, 60);
	rs.races = 1;
	rs.appends_seen = 0;
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 50, &res),
			 ERR_INSUFFICIENT_FUNDS);
	ck_assert_int_eq(res.balance, 40);
	ck_assert_uint_eq(res.conflicts, 1);
	ck_assert_int_eq(rs.appends_seen, 1);	/* re-decided, not re-sent */
	ck_assert_uint_eq(head(), 2);		/* only the rival's debit */

	/* a race that still leaves room: the retry succeeds */
	rs.rival = rival_event("A", EVENT_CREDITED, 5);
	rs.races = 1;
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 40, &res), ERR_OK);
	ck_assert_uint_eq(res.conflicts, 1);
	ck_assert_uint_eq(res.version, 4);
	ck_assert_uint_eq(res.position, 4);
}
END_TEST

START_TEST(a_writer_that_always_wins_gives_conflict)
{
	handler_result res;
	handler_deposit(h, "A", 1, 100, &res);
	rs.rival = rival_event("A", EVENT_CREDITED, 1);
	rs.races = 1000;
	rs.appends_seen = 0;
	uint64_t before = head();
	ck_assert_int_eq(handler_deposit(h, "A", 1, 7, &res), ERR_CONFLICT);
	/* the attempt on the cache, then HANDLER_RETRIES + 1 on fresh reads */
	ck_assert_uint_eq(res.conflicts, HANDLER_RETRIES + 2);
	ck_assert_int_eq(rs.appends_seen, HANDLER_RETRIES + 2);
	/* only the rival's events were written, none of ours */
	ck_assert_uint_eq(head(), before + HANDLER_RETRIES + 2);
}
END_TEST

START_TEST(a_transfer_races_on_its_second_stream)
{
	handler_result res;
	handler_deposit(h, "A", 1, 10, &res);
	handler_deposit(h, "B", 1, 10, &res);
	rs.rival = rival_event("B", EVENT_CREDITED, 1);
	rs.races = 1;
	ck_assert_int_eq(handler_transfer(h, "A", 1, "B", 1, 4, &res), ERR_OK);
	ck_assert_uint_eq(res.conflicts, 1);
	ck_assert_uint_eq(res.position, 5);
}
END_TEST

START_TEST(the_cache_saves_reads_but_never_decides_a_refusal)
{
	handler *other = handler_new(&rs.base);
	handler_result res;
	handler_deposit(h, "A", 1, 10, &res);	/* not cached yet: one read */
	ck_assert_int_eq(rs.reads, 1);
	rs.reads = 0;
	ck_assert_int_eq(handler_deposit(h, "A", 1, 5, &res), ERR_OK);
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 15, &res), ERR_OK);
	ck_assert_int_eq(rs.reads, 0);	/* the cache was enough */
	handler_deposit(other, "A", 1, 50, &res);	/* h's cache is now behind */
	rs.reads = 0;
	/* the cache says 0: the refusal is checked against the store first */
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 30, &res), ERR_OK);
	ck_assert_int_eq(rs.reads, 1);
	ck_assert_uint_eq(res.version, 5);
	handler_deposit(other, "A", 1, 1, &res);	/* behind again */
	/* the cache says yes: the append carries a stale version, conflicts,
	 * and the retry reads what changed */
	ck_assert_int_eq(handler_deposit(h, "A", 1, 2, &res), ERR_OK);
	ck_assert_uint_eq(res.conflicts, 1);
	ck_assert_uint_eq(res.version, 7);
	/* 50-30+1+2 */
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 23, &res), ERR_OK);
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 1, &res), ERR_INSUFFICIENT_FUNDS);
	handler_free(other);
}
END_TEST

START_TEST(a_conflict_is_decided_again_on_the_kept_state)
{
	handler *other = handler_new(&rs.base);
	handler_result res;
	handler_deposit(h, "A", 1, 10, &res);
	for (int i = 0; i < 50; i++)	/* h's cache is 50 events behind */
		handler_deposit(other, "A", 1, 1, &res);
	rs.events_read = 0;
	/* the stale append conflicts; the retry starts from the store's kept
	 * state (version and balance), not from the events since the cache */
	ck_assert_int_eq(handler_deposit(h, "A", 1, 5, &res), ERR_OK);
	ck_assert_uint_eq(res.conflicts, 1);
	ck_assert_uint_eq(res.version, 52);
	ck_assert_int_eq(rs.events_read, 0);
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 65, &res), ERR_OK);
	ck_assert_uint_eq(res.conflicts, 0);	/* the cache caught up */
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 1, &res),
			 ERR_INSUFFICIENT_FUNDS);
	handler_free(other);
}
END_TEST

START_TEST(a_stale_cache_does_not_use_up_a_retry)
{
	handler *other = handler_new(&rs.base);
	handler_result res;
	handler_deposit(h, "A", 1, 10, &res);
	handler_deposit(other, "A", 1, 1, &res);	/* h's cache is behind */
	/* the cached attempt conflicts (no race), then a rival wins every
	 * retry but the last */
	rs.rival = rival_event("A", EVENT_CREDITED, 1);
	rs.race_after = 1;
	rs.races = HANDLER_RETRIES;
	ck_assert_int_eq(handler_deposit(h, "A", 1, 5, &res), ERR_OK);
	ck_assert_uint_eq(res.conflicts, HANDLER_RETRIES + 1);
	ck_assert_uint_eq(res.version, 2 + HANDLER_RETRIES + 1);
	handler_free(other);
}
END_TEST

START_TEST(cached_state_catches_up_with_other_handlers)
{
	handler *other = handler_new(&rs.base);
	handler_result res;
	handler_deposit(h, "A", 1, 10, &res);
	handler_deposit(other, "A", 1, 90, &res);	/* h's cache is now behind */
	ck_assert_int_eq(handler_withdraw(h, "A", 1, 100, &res), ERR_OK);
	ck_assert_uint_eq(res.version, 3);
	ck_assert_uint_eq(res.conflicts, 0);
	ck_assert_int_eq(handler_withdraw(other, "A", 1, 1, &res),
			 ERR_INSUFFICIENT_FUNDS);
	handler_free(other);
	handler_free(NULL);
}
END_TEST

typedef struct times {
	int64_t t;
	int n;
} times;

static int grab_time(void *ctx, const store_event *ev)
{
	((times *)ctx)->t = ev->time_ms;
	((times *)ctx)->n++;
	return 0;
}

START_TEST(events_carry_the_clock)
{
	handler_result res;
	handler_deposit(h, "A", 1, 1, &res);
	times t = { 0, 0 };
	store_read_all(&rs.base, 0, 10, grab_time, &t);
	ck_assert_int_eq(t.n, 1);
	ck_assert_int_eq(t.t, 1700000000123);
}
END_TEST

static Suite *handler_suite(void)
{
	Suite *s = suite_create("handler");
	TCase *t = tcase_create("decide");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, deposit_withdraw_transfer_results);
	tcase_add_test(t, transfer_is_both_events_or_neither);
	tcase_add_test(t, events_carry_the_clock);
	tcase_add_test(t, a_conflict_is_decided_again_on_the_kept_state);
	suite_add_tcase(s, t);
	t = tcase_create("conflict");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, a_lost_race_is_retried_and_redecided);
	tcase_add_test(t, a_writer_that_always_wins_gives_conflict);
	tcase_add_test(t, a_transfer_races_on_its_second_stream);
	tcase_add_test(t, cached_state_catches_up_with_other_handlers);
	tcase_add_test(t, the_cache_saves_reads_but_never_decides_a_refusal);
	tcase_add_test(t, a_stale_cache_does_not_use_up_a_retry);
	suite_add_tcase(s, t);
	return s;
}

UNIT_MAIN(handler_suite)
