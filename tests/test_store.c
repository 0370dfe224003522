/* test_store.c — the store contract: appends, expected versions, atomicity,
 * stream reads, reads after a position, across block boundaries. Runs on
 * the memory store; with SIMPLECQRS_TEST_STORE=sqlite on a fresh SQLite
 * file per test; with SIMPLECQRS_TEST_STORE=postgresql on a fresh database
 * per test, made (and dropped) through SIMPLECQRS_TEST_PG_URI, a server's
 * maintenance database (default postgresql:///postgres, libpq's PG*
 * variables doing the rest; tests/pg_test.py runs it in its own cluster).
 * On the durable stores (sqlite, postgresql) the kept balance sheet,
 * reopening (a file opened again, a connection made again), polling for
 * others' commits and the wait for the write lock are tested too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#if HAVE_LIBPQ
#include <libpq-fe.h>
#endif
#include "simplecqrs/sheet_store.h"
#include "simplecqrs/store.h"
#include "secret.h"	/* secret_scrub */
#include "unit.h"

static store *s;
static char dir[64], uri[512], pg_db[64];

static const char *store_under_test(void)
{
	const char *kind = getenv("SIMPLECQRS_TEST_STORE");
	return kind && *kind ? kind : "memory";
}

static bool on_sqlite(void)
{
	return strcmp(store_under_test(), "sqlite") == 0;
}

static bool on_pg(void)
{
	return strcmp(store_under_test(), "postgresql") == 0;
}

/* Whether the store numbers streams (store_event's stream_key): memory and
 * sqlite do; postgresql has no keys, gives 0 and leaves hints alone. */
static bool numbers_streams(void)
{
	return !on_pg();
}

/* A store that outlives its handle: reopening finds what was written. */
static bool durable(void)
{
	return on_sqlite() || on_pg();
}

static const char *pg_admin_uri(void)
{
	const char *u = getenv("SIMPLECQRS_TEST_PG_URI");
	return u && *u ? u : "postgresql:///postgres";
}

/* The admin URI with its database (the path after the authority) made db. */
static void pg_uri_for(const char *db, char *out, size_t len)
{
	const char *admin = pg_admin_uri();
	const char *auth = strstr(admin, "://");
	ck_assert_msg(auth != NULL, "SIMPLECQRS_TEST_PG_URI is not a postgresql:// URI");
	auth += 3;
	size_t host = strcspn(auth, "/?");
	const char *rest = auth + host;
	if (*rest == '/')
		rest += strcspn(rest, "?");
	int n = snprintf(out, len, "%.*s/%s%s", (int)(auth + host - admin), admin, db, rest);
	ck_assert(n > 0 && (size_t)n < len);
}

/* Runs one statement on the maintenance database (CREATE/DROP DATABASE). */
static void pg_admin(const char *sql)
{
#if HAVE_LIBPQ
	PGconn *c = PQconnectdb(pg_admin_uri());
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s: %s", pg_admin_uri(),
		      PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	char msg[512];
	snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	ck_assert_msg(ok, "%s: %s", sql, msg);
#else
	(void)sql;
	ck_abort_msg("SIMPLECQRS_TEST_STORE=postgresql: built without libpq");
#endif
}

static void setup(void)
{
	char why[256];
	snprintf(uri, sizeof uri, "memory");
	if (on_sqlite()) {
		strcpy(dir, "/tmp/simplecqrs-test-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(dir));
		snprintf(uri, sizeof uri, "sqlite:%s/t.db", dir);
	} else if (on_pg()) {
		static unsigned made;	/* each test runs in a child of its own, */
		struct timespec t;	/* or one after another in this process */
		clock_gettime(CLOCK_REALTIME, &t);
		snprintf(pg_db, sizeof pg_db, "test_store_%ld_%ld_%u", (long)getpid(),
			 (long)t.tv_nsec, made++);
		char sql[128];
		snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", pg_db);
		pg_admin(sql);
		pg_uri_for(pg_db, uri, sizeof uri);
	} else {
		ck_assert_msg(strcmp(store_under_test(), "memory") == 0,
			      "SIMPLECQRS_TEST_STORE is memory, sqlite or postgresql, not %s",
			      store_under_test());
	}
	ck_assert_msg(store_open(uri, &s, why, sizeof why) == ERR_OK, "%s", why);
}

static void teardown(void)
{
	store_free(s);
	s = NULL;
	if (on_sqlite()) {
		char path[128];
		snprintf(path, sizeof path, "%s/t.db", dir);
		unlink(path);
		rmdir(dir);
	} else if (on_pg()) {
		char sql[128];
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", pg_db);
		pg_admin(sql);
	}
}

/* Closes the store and opens the same one again (sqlite: the same file;
 * postgresql: a new connection to the same database). */
static void reopen(void)
{
	char why[256];
	store_free(s);
	ck_assert_msg(store_open(uri, &s, why, sizeof why) == ERR_OK, "%s", why);
}

typedef struct seen {
	store_event ev[64];
	char stream[64][65];
	size_t n;
	size_t stop_after;	/* 0: never stop */
} seen;

static int record(void *ctx, const store_event *ev)
{
	seen *r = ctx;
	if (r->n < 64) {
		r->ev[r->n] = *ev;
		strcpy(r->stream[r->n], ev->stream);
	}
	r->n++;
	return r->stop_after && r->n == r->stop_after ? 7 : 0;
}

static uint64_t head(void)
{
	uint64_t h;
	ck_assert_int_eq(store_head(s, &h), ERR_OK);
	return h;
}

static store_new_event ev(const char *stream, uint64_t expected, event_type t,
			   int64_t amount)
{
	return (store_new_event){ .stream = stream, .expected_version = expected,
				  .type = t, .amount = amount };
}

static uint64_t put(const char *stream, uint64_t expected, event_type t,
		    int64_t amount)
{
	store_new_event e = ev(stream, expected, t, amount);
	uint64_t pos = 0;
	ck_assert_int_eq(store_append(s, &e, 1, 1000, &pos), ERR_OK);
	return pos;
}

START_TEST(empty_store)
{
	uint64_t n;
	ck_assert_str_eq(store_kind(s), store_under_test());
	ck_assert_uint_eq(head(), 0);
	ck_assert_int_eq(store_stream_count(s, &n), ERR_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(store_count_after(s, 0, &n), ERR_OK);
	ck_assert_uint_eq(n, 0);
	seen r = { 0 };
	ck_assert_int_eq(store_read_stream(s, "nobody", 0, record, &r), 0);
	ck_assert_int_eq(store_read_all(s, 0, 10, record, &r), 0);
	ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(positions_are_gapless_and_versions_per_stream)
{
	ck_assert_uint_eq(put("A", 0, EVENT_CREDITED, 10), 1);
	ck_assert_uint_eq(put("B", 0, EVENT_CREDITED, 20), 2);
	ck_assert_uint_eq(put("A", 1, EVENT_DEBITED, 3), 3);
	seen r = { 0 };
	store_read_stream(s, "A", 0, record, &r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_uint_eq(r.ev[0].version, 1);
	ck_assert_uint_eq(r.ev[0].position, 1);
	ck_assert_int_eq(r.ev[0].type, EVENT_CREDITED);
	ck_assert_uint_eq(r.ev[1].version, 2);
	ck_assert_uint_eq(r.ev[1].position, 3);
	ck_assert_int_eq(r.ev[1].type, EVENT_DEBITED);
	ck_assert_int_eq(r.ev[1].amount, 3);
	ck_assert_int_eq(r.ev[1].time_ms, 1000);
	ck_assert_str_eq(r.stream[1], "A");
	uint64_t n;
	store_stream_count(s, &n);
	ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(stale_expected_version_conflicts_and_writes_nothing)
{
	put("A", 0, EVENT_CREDITED, 10);
	store_new_event e = ev("A", 0, EVENT_CREDITED, 5);
	uint64_t pos = 99;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_CONFLICT);
	e.expected_version = 2;	/* from the future */
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_CONFLICT);
	e.stream = "new";
	e.expected_version = 1;	/* a stream that does not exist is at 0 */
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_CONFLICT);
	ck_assert_uint_eq(pos, 99);
	ck_assert_uint_eq(head(), 1);
}
END_TEST

START_TEST(two_stream_append_is_all_or_nothing)
{
	put("A", 0, EVENT_CREDITED, 10);
	put("B", 0, EVENT_CREDITED, 1);
	store_new_event t[2] = {
		ev("A", 1, EVENT_DEBITED, 4),
		ev("B", 0, EVENT_CREDITED, 4),	/* stale: B is at 1 */
	};
	uint64_t pos;
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_CONFLICT);
	ck_assert_uint_eq(head(), 2);
	seen r = { 0 };
	store_read_stream(s, "A", 0, record, &r);
	ck_assert_uint_eq(r.n, 1);	/* A's debit was not written either */

	t[1].expected_version = 1;
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_OK);
	ck_assert_uint_eq(pos, 4);
	memset(&r, 0, sizeof r);
	store_read_all(s, 2, 10, record, &r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_str_eq(r.stream[0], "A");
	ck_assert_uint_eq(r.ev[0].position, 3);
	ck_assert_str_eq(r.stream[1], "B");
	ck_assert_uint_eq(r.ev[1].position, 4);
	ck_assert_uint_eq(r.ev[1].version, 2);
}
END_TEST

START_TEST(one_append_may_hold_a_stream_twice)
{
	store_new_event t[2] = {
		ev("A", 0, EVENT_CREDITED, 4),
		ev("A", 1, EVENT_CREDITED, 5),
	};
	uint64_t pos;
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_OK);
	ck_assert_uint_eq(pos, 2);
	t[0].expected_version = 2;
	t[1].expected_version = 2;	/* must be 3 after the first */
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_CONFLICT);
	ck_assert_uint_eq(head(), 2);
}
END_TEST

START_TEST(an_append_gives_back_the_stream_key)
{
	uint32_t ka = 0, kb = 0;
	store_new_event e = ev("A", 0, EVENT_CREDITED, 4);
	e.stream_len = 1;
	e.stream_key = &ka;
	uint64_t pos;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_OK);
	ck_assert(numbers_streams() ? ka != 0 : ka == 0);
	e = ev("B", 0, EVENT_CREDITED, 4);	/* stream_len 0: measured */
	e.stream_key = &kb;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_OK);
	ck_assert(numbers_streams() ? kb != 0 && ka != kb : kb == 0);
	/* the key is the one readers see */
	seen r = { .n = 0 };
	ck_assert_int_eq(store_read_all(s, 0, 10, record, &r), ERR_OK);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_uint_eq(r.ev[0].stream_key, ka);
	ck_assert_uint_eq(r.ev[1].stream_key, kb);
}
END_TEST

START_TEST(a_wrong_stream_key_is_only_a_hint)
{
	put("A", 0, EVENT_CREDITED, 4);
	uint32_t kb = 0;
	store_new_event e = ev("B", 0, EVENT_CREDITED, 4);
	e.stream_key = &kb;
	uint64_t pos;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_OK);
	if (!numbers_streams()) {	/* it gave none: give one anyway */
		ck_assert_uint_eq(kb, 0);
		kb = 5;
	}
	/* B's key, a key no stream has, and the largest key: each is wrong
	 * for A, and each append still goes to A (a store without keys
	 * leaves each hint as it was) */
	uint32_t wrong[] = { kb, 99, UINT32_MAX };
	for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
		uint32_t k = wrong[i];
		e = ev("A", 1 + i, EVENT_CREDITED, 1);
		e.stream_len = 1;
		e.stream_key = &k;
		ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_OK);
		ck_assert(numbers_streams() ? k != kb : k == wrong[i]);
	}
	seen r = { .n = 0 };
	ck_assert_int_eq(store_read_stream(s, "A", 0, record, &r), ERR_OK);
	ck_assert_uint_eq(r.n, 4);
	r.n = 0;
	ck_assert_int_eq(store_read_stream(s, "B", 0, record, &r), ERR_OK);
	ck_assert_uint_eq(r.n, 1);
	/* a new stream with another's key is still new, in both appends */
	uint32_t k = kb;
	e = ev("C", 0, EVENT_CREDITED, 1);
	e.stream_key = &k;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_OK);
	ck_assert(numbers_streams() ? k != kb : k == kb);
	k = kb;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_CONFLICT);
	store_new_event t[2] = { ev("D", 0, EVENT_CREDITED, 1),
				 ev("B", 1, EVENT_CREDITED, 1) };
	uint32_t kt[2] = { kb, kb };
	t[0].stream_key = &kt[0];
	t[1].stream_key = &kt[1];
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_OK);
	ck_assert(numbers_streams() ? kt[0] != kb : kt[0] == kb);
	ck_assert_uint_eq(kt[1], kb);
	ck_assert_uint_eq(head(), 8);
}
END_TEST

START_TEST(read_stream_after_a_version)
{
	for (int i = 0; i < 10; i++) {
		put("A", (uint64_t)i, EVENT_CREDITED, i + 1);
		put("B", (uint64_t)i, EVENT_CREDITED, 100);
	}
	seen r = { 0 };
	store_read_stream(s, "A", 7, record, &r);
	ck_assert_uint_eq(r.n, 3);
	ck_assert_uint_eq(r.ev[0].version, 8);
	ck_assert_int_eq(r.ev[0].amount, 8);
	ck_assert_uint_eq(r.ev[0].position, 15);
	ck_assert_uint_eq(r.ev[2].version, 10);
	memset(&r, 0, sizeof r);
	store_read_stream(s, "A", 10, record, &r);
	ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(read_all_in_batches_and_stop_early)
{
	for (int i = 0; i < 25; i++)
		put("A", (uint64_t)i, EVENT_CREDITED, 1);
	uint64_t after = 0, total = 0;
	for (;;) {
		seen r = { 0 };
		store_read_all(s, after, 10, record, &r);
		for (size_t i = 0; i < r.n; i++)
			ck_assert_uint_eq(r.ev[i].position, after + i + 1);
		total += r.n;
		if (r.n < 10)
			break;
		after = r.ev[r.n - 1].position;
	}
	ck_assert_uint_eq(total, 25);
	seen r = { .stop_after = 3 };
	ck_assert_int_eq(store_read_all(s, 0, 100, record, &r), ERR_OK);
	ck_assert_uint_eq(r.n, 3);
	uint64_t n;
	store_count_after(s, 20, &n);
	ck_assert_uint_eq(n, 5);
	store_count_after(s, 30, &n);
	ck_assert_uint_eq(n, 0);
}
END_TEST

static int check_chain(void *ctx, const store_event *ev)
{
	uint64_t *next = ctx;
	ck_assert_uint_eq(ev->version, *next);
	/* stream "s0" got positions 1, 4, 7, … in the loop below */
	ck_assert_uint_eq(ev->position, 3 * (*next - 1) + 1);
	(*next)++;
	return 0;
}

START_TEST(many_events_cross_blocks)
{
	const char *ids[3] = { "s0", "s1", "s2" };
	uint64_t v[3] = { 0 };
	/* the memory store's blocks; a server round trip per append is slow,
	 * and its reads have no blocks to cross */
	int n = on_pg() ? 3000 : 200000;
	for (int i = 0; i < n; i++)
		put(ids[i % 3], v[i % 3]++, EVENT_CREDITED, 1);
	ck_assert_uint_eq(head(), (uint64_t)n);
	uint64_t next = v[0] - 667;	/* 66000 of 66667 */
	store_read_stream(s, "s0", next - 1, check_chain, &next);
	ck_assert_uint_eq(next, v[0] + 1);
	next = 1;
	store_read_stream(s, "s0", 0, check_chain, &next);
	ck_assert_uint_eq(next, v[0] + 1);
}
END_TEST

static int list(void *ctx, const char *stream)
{
	char *out = ctx;
	strcat(out, stream);
	strcat(out, ",");
	return strcmp(stream, "stop") == 0;
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The comma-separated list sorted: stores list streams in no set order. */
static const char *sorted(char *out)
{
	char copy[256], *items[16] = { 0 }, *save = NULL;
	size_t n = 0;
	strcpy(copy, out);
	for (char *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		items[n++] = t;
	qsort(items, n, sizeof *items, by_string);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		strcat(strcat(out, items[i]), ",");
	return out;
}

START_TEST(streams_are_listed_by_prefix)
{
	char out[256] = "";
	const char *ids[] = { "XX1", "XY", "XX2", "A", "X" };
	for (size_t i = 0; i < 5; i++)
		put(ids[i], 0, EVENT_CREDITED, 1);
	put("XX1", 1, EVENT_CREDITED, 1);	/* listed once, not per event */
	ck_assert_int_eq(store_streams(s, "XX", list, out), 0);
	ck_assert_str_eq(sorted(out), "XX1,XX2,");
	out[0] = '\0';
	store_streams(s, "", list, out);
	ck_assert_str_eq(sorted(out), "A,X,XX1,XX2,XY,");
	out[0] = '\0';
	store_streams(s, "nothing", list, out);
	ck_assert_str_eq(out, "");
	put("stop", 0, EVENT_CREDITED, 1);
	put("stopped", 0, EVENT_CREDITED, 1);
	out[0] = '\0';
	ck_assert_int_eq(store_streams(s, "st", list, out), ERR_OK);
	ck_assert_str_eq(out, "stop,");
}
END_TEST

START_TEST(passwords_never_show)
{
	char out[128];
	const char *cases[][2] = {
		{ "postgres://user:secret@host/db", "postgres://user@host/db" },
		{ "postgresql://u:p%40ss@h:5432/db?sslmode=require",
		  "postgresql://u@h:5432/db?sslmode=require" },
		{ "postgresql://h/db?password=secret&user=u",
		  "postgresql://h/db?password=***&user=u" },
		{ "postgresql://u:x@h/db?sslmode=disable&password=y",
		  "postgresql://u@h/db?sslmode=disable&password=***" },
		{ "postgresql://u@h/db?passwordless=keep", "postgresql://u@h/db?passwordless=keep" },
		{ "postgresql://h/db?sslpassword=s1", "postgresql://h/db?sslpassword=***" },
		{ "postgresql://h/db?pass%77ord=s2&x=1", "postgresql://h/db?pass%77ord=***&x=1" },
		{ "postgresql://h/db?PASSWORD=s3", "postgresql://h/db?PASSWORD=***" },
		{ "postgresql://u:SE#CRET4@h/db", "postgresql://u@h/db" },
		{ "postgresql://u:SE?CRET5@h/db", "postgresql://u@h/db" },
		{ "postgresql://u:s6@h", "postgresql://u@h" },
		{ "postgresql://u:a@b@h/db", "postgresql://u@h/db" },
		{ "sqlite:/tmp/a:b@c", "sqlite:/tmp/a:b@c" },
		{ "memory", "memory" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		store_safe_uri(cases[i][0], out, sizeof out);
		ck_assert_str_eq(out, cases[i][1]);
	}
	store_safe_uri("postgres://user:secret@host/db", out, 12);
	ck_assert_str_eq(out, "postgres://");	/* cut, still terminated */
}
END_TEST

/* The forms that defeated the mask: a password holding '/', '@' or a bad
 * %-escape, the one-slash typo, key=value strings, any case and encoding;
 * and messages that quote a piece of one (libpq takes "hunter2" for a port
 * out of bob:hunter2/x@host). */
START_TEST(password_forms_masked)
{
	char out[200];
	const char *cases[][2] = {
		{ "postgresql://bob:hunter2/x@host/db", "postgresql://bob@host/db" },
		{ "postgresql://bob@host/db?password=hunter2%zz",
		  "postgresql://bob@host/db?password=***" },
		{ "postgresql:/bob:hunter2@db/ledger", "postgresql:/bob@db/ledger" },
		{ "postgres:bob:hunter2@db/ledger", "postgres:bob@db/ledger" },
		{ "postgresql://bob:hun@ter2@host/db", "postgresql://bob@host/db" },
		{ "postgresql://bob:hunter2@host/db?application_name=hunter2",
		  "postgresql://bob@host/db?application_name=***" },
		{ "postgresql://bob:hunter2%2Fx@h/db?application_name=hunter2/x",
		  "postgresql://bob@h/db?application_name=***" },
		{ "postgresql://h/db?Pass%57ord=hunter2&sslmode=require",
		  "postgresql://h/db?Pass%57ord=***&sslmode=require" },
		{ "postgresql://h/db?sslmode=require&passWORD=hunter2",
		  "postgresql://h/db?sslmode=require&passWORD=***" },
		{ "POSTGRESQL://bob:hunter2@h/db", "POSTGRESQL://bob@h/db" },
		{ "host=h password=hunter2 dbname=d", "host=h password=*** dbname=d" },
		{ "host=h password = 'hun ter\\'2' dbname=d",
		  "host=h password = *** dbname=d" },
		{ "postgresql://h:5432/db", "postgresql://h:5432/db" },
		{ "postgresql:///db?host=/run/pg", "postgresql:///db?host=/run/pg" },
		{ "sqlite:password=x", "sqlite:password=x" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		store_safe_uri(cases[i][0], out, sizeof out);
		ck_assert_msg(strcmp(out, cases[i][1]) == 0, "%s: got %s, want %s",
			      cases[i][0], out, cases[i][1]);
	}
	snprintf(out, sizeof out, "invalid integer value \"hunter2\" for "
		 "connection option \"port\"");
	secret_scrub("postgresql://bob:hunter2/x@host/db", NULL, out, sizeof out);
	ck_assert_str_eq(out, "invalid integer value \"***\" for connection option \"port\"");
	snprintf(out, sizeof out, "invalid percent-encoded token: \"hunter2%%zz\"");
	secret_scrub("postgresql://bob@host/db?password=hunter2%zz", NULL, out, sizeof out);
	ck_assert_str_eq(out, "invalid percent-encoded token: \"***\"");
	snprintf(out, sizeof out, "could not translate host name \"ter2@host\"");
	secret_scrub("postgresql://bob:hun@ter2@host/db", NULL, out, sizeof out);
	ck_assert_str_eq(out, "could not translate host name \"***@host\"");
	snprintf(out, sizeof out, "missing \"=\" after \"postgresql:/bob:hunter2@db\"");
	secret_scrub("postgresql:/bob:hunter2@db", "pgpass-env", out, sizeof out);
	ck_assert_str_eq(out, "missing \"=\" after \"postgresql:/bob:***@db\"");
	snprintf(out, sizeof out, "p@ss and p%%40ss and pgpass-env");
	secret_scrub("postgresql://u:p%40ss@h/db", "pgpass-env", out, sizeof out);
	ck_assert_str_eq(out, "*** and *** and ***");
}
END_TEST

START_TEST(unknown_uris_do_not_open)
{
	store *x = (store *)1;
	char why[128] = "";
	ck_assert_int_eq(store_open("mongodb://x", &x, why, sizeof why), ERR_STORAGE);
	ck_assert_ptr_null(x);
	ck_assert(strstr(why, "unknown store") != NULL);
	ck_assert_int_ne(store_open("", &x, why, sizeof why), 0);
	store_free(NULL);	/* a no-op */
}
END_TEST

START_TEST(a_conflict_puts_back_a_new_stream)
{
	put("B", 0, EVENT_CREDITED, 1);
	store_new_event t[2] = {
		ev("new", 0, EVENT_CREDITED, 4),
		ev("B", 0, EVENT_CREDITED, 4),	/* stale: B is at 1 */
	};
	uint64_t pos, n;
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_CONFLICT);
	store_stream_count(s, &n);
	ck_assert_uint_eq(n, 1);
	seen r = { 0 };
	store_read_stream(s, "new", 0, record, &r);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_uint_eq(put("new", 0, EVENT_CREDITED, 2), 2);	/* no gap */
	ck_assert_uint_eq(put("B", 1, EVENT_CREDITED, 2), 3);
}
END_TEST

START_TEST(reopened_the_store_is_as_left)
{
	put("A", 0, EVENT_CREDITED, 10);
	put("A", 1, EVENT_DEBITED, 3);
	store_new_event t[2] = {
		ev("A", 2, EVENT_DEBITED, 2),
		ev("B", 0, EVENT_CREDITED, 2),
	};
	uint64_t pos;
	ck_assert_int_eq(store_append(s, t, 2, 1795899784123, &pos), ERR_OK);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	if (!durable())
		return;	/* the memory store forgets, as it should */
	reopen();
	ck_assert_uint_eq(head(), 4);
	seen r = { 0 };
	store_read_all(s, 0, 10, record, &r);
	ck_assert_uint_eq(r.n, 4);
	ck_assert_str_eq(r.stream[2], "A");
	ck_assert_uint_eq(r.ev[2].version, 3);
	ck_assert_int_eq(r.ev[2].type, EVENT_DEBITED);
	ck_assert_str_eq(r.stream[3], "B");
	ck_assert_int_eq(r.ev[3].time_ms, 1795899784123);
	ck_assert_uint_eq(r.ev[3].stream_key != 0, numbers_streams());
	/* and the next append carries on from there */
	ck_assert_uint_eq(put("B", 1, EVENT_CREDITED, 1), 5);
}
END_TEST

START_TEST(a_group_not_committed_is_not_kept)
{
	put("A", 0, EVENT_CREDITED, 10);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	put("A", 1, EVENT_CREDITED, 5);	/* no commit: closing drops it */
	if (!durable())
		return;
	reopen();
	ck_assert_uint_eq(head(), 1);
	ck_assert_uint_eq(put("A", 1, EVENT_CREDITED, 7), 2);
}
END_TEST

typedef struct rows_seen {
	char text[256];
} rows_seen;

static int row(void *ctx, const char *account, int64_t balance)
{
	rows_seen *r = ctx;
	char one[80];
	snprintf(one, sizeof one, "%s=%lld,", account, (long long)balance);
	strcat(r->text, one);
	return 0;
}

START_TEST(the_kept_sheet_moves_only_from_its_checkpoint)
{
	uint64_t cp = 99;
	rows_seen r = { "" };
	sheet_store *k = sheet_store_of(s);
	ck_assert_int_eq(k != NULL, durable());
	if (!durable())
		return;
	ck_assert_int_eq(sheet_store_load(k, &cp, row, &r), ERR_OK);
	ck_assert_uint_eq(cp, 0);
	ck_assert_str_eq(r.text, "");
	sheet_store_row b[2] = { { "A", 5 }, { "B", 7 } };
	ck_assert_int_eq(sheet_store_save(k, 0, 3, b, 2, false), ERR_OK);
	/* a second shell that also started from 0 loses */
	ck_assert_int_eq(sheet_store_save(k, 0, 4, b, 1, false), ERR_CONFLICT);
	b[0].balance = 6;
	ck_assert_int_eq(sheet_store_save(k, 3, 4, b, 1, false), ERR_OK);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	reopen();
	k = sheet_store_of(s);
	ck_assert_int_eq(sheet_store_checkpoint(k, &cp), ERR_OK);
	ck_assert_uint_eq(cp, 4);
	sheet_store_load(k, &cp, row, &r);
	ck_assert_str_eq(sorted(r.text), "A=6,B=7,");	/* in no set order */
	/* rebuild: the rows given are the whole sheet */
	ck_assert_int_eq(sheet_store_save(k, 4, 9, b + 1, 1, true), ERR_OK);
	r.text[0] = '\0';
	sheet_store_load(k, &cp, row, &r);
	ck_assert_str_eq(r.text, "B=7,");
	ck_assert_uint_eq(cp, 9);
}
END_TEST

static bool polled(store *on)
{
	bool changed = false;
	ck_assert_int_eq(store_poll(on, &changed), ERR_OK);
	return changed;
}

/* PostgreSQL tells of another session's commit by a notification that
 * arrives a moment after that commit returns: ask again for up to 2 s. */
static bool polled_soon(store *on)
{
	if (!on_pg())
		return polled(on);
	for (int i = 0; i < 200; i++) {
		if (polled(on))
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	return false;
}

/* Asked after anything still on its way has had time to arrive (pg). */
static bool polled_later(store *on)
{
	if (on_pg())
		nanosleep(&(struct timespec){ .tv_nsec = 150000000 }, NULL);
	return polled(on);
}

/* An idle prompt polls to redraw its lag: another shell's commit and this
 * one's own say changed, once; nothing else does. */
START_TEST(poll_says_when_anyone_committed)
{
	if (!durable()) {
		ck_assert(polled(s));	/* it cannot tell: always changed */
		return;
	}
	char why[256];
	store *other;
	ck_assert_msg(store_open(uri, &other, why, sizeof why) == ERR_OK, "%s", why);
	ck_assert(!polled_later(s));
	store_new_event e = ev("A", 0, EVENT_CREDITED, 5);
	uint64_t pos;
	ck_assert_int_eq(store_append(other, &e, 1, 1000, &pos), ERR_OK);
	ck_assert(!polled_later(s));	/* not committed yet */
	ck_assert_int_eq(store_commit(other), ERR_OK);
	ck_assert(polled_soon(s));
	ck_assert(!polled_later(s));
	ck_assert_uint_eq(head(), 1);	/* reading changes nothing */
	ck_assert(!polled_later(s));
	put("A", 1, EVENT_CREDITED, 1);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	ck_assert(polled_soon(s));
	ck_assert(!polled_later(s));
	ck_assert(polled_later(other));	/* it saw s's commit, and its own */
	ck_assert(!polled_later(other));
	store_free(other);
}
END_TEST

typedef struct waits {
	unsigned calls, last_ms;
} waits;

static bool stop_second_time(void *ctx, unsigned waited_ms)
{
	waits *w = ctx;
	w->last_ms = waited_ms;
	return ++w->calls < 2;
}

/* Another program holds the write lock: the store asks the wait hook about
 * every 100 ms, and when it says stop the write fails as busy, unwritten. */
START_TEST(the_wait_hook_ends_a_wait_for_the_lock)
{
	if (!durable())
		return;
	char why[256];
	store *other;
	ck_assert_msg(store_open(uri, &other, why, sizeof why) == ERR_OK, "%s", why);
	store_new_event e = ev("A", 0, EVENT_CREDITED, 5);
	uint64_t pos;
	ck_assert_int_eq(store_append(other, &e, 1, 1000, &pos), ERR_OK);	/* holds it */
	waits w = { 0, 0 };
	store_set_wait(s, stop_second_time, &w);
	e.stream = "B";
	ck_assert_int_eq(store_append(s, &e, 1, 1000, &pos), ERR_BUSY);
	ck_assert_uint_eq(w.calls, 2);
	ck_assert_uint_ge(w.last_ms, 200);
	ck_assert_uint_lt(w.last_ms, 1000);
	ck_assert_ptr_nonnull(strstr(store_errmsg(s), "write lock"));
	ck_assert_int_eq(store_commit(s), ERR_OK);	/* nothing to report */
	ck_assert_int_eq(store_commit(other), ERR_OK);
	ck_assert_uint_eq(head(), 1);
	store_set_wait(s, NULL, NULL);
	ck_assert_uint_eq(put("B", 0, EVENT_CREDITED, 1), 2);	/* free now */
	store_free(other);
}
END_TEST

/* Where the ledger is (sqlite: the file; postgresql: the URI, here without
 * a password to hide), and whether this open made it. */
START_TEST(location_and_created)
{
	if (!durable()) {
		ck_assert_ptr_null(store_location(s));
		ck_assert(!store_created(s));
		return;
	}
	char want[sizeof uri];
	if (on_sqlite())
		snprintf(want, sizeof want, "%s/t.db", dir);
	else
		snprintf(want, sizeof want, "%s", uri);
	ck_assert_str_eq(store_location(s), want);
	ck_assert(store_created(s));
	reopen();
	ck_assert_str_eq(store_location(s), want);
	ck_assert(!store_created(s));
}
END_TEST

/* The state the store keeps of stream (store_stream_state) is version and
 * balance; on a store that numbers streams the key it gives is the
 * stream's, whatever hint went in. */
static void state_is(const char *stream, uint32_t hint, uint64_t version,
		     int64_t balance)
{
	uint32_t key = hint;
	uint64_t v = 99;
	int64_t b = 99;
	ck_assert_int_eq(store_stream_state(s, stream, strlen(stream), &key, &v, &b),
			 ERR_OK);
	ck_assert_msg(v == version && b == balance, "%s: version %llu balance %lld, "
		      "want %llu and %lld", stream, (unsigned long long)v,
		      (long long)b, (unsigned long long)version, (long long)balance);
	if (version == 0)
		ck_assert_uint_eq(key, hint);	/* no stream: no key */
	else if (numbers_streams())
		ck_assert_uint_ne(key, 0);
}

START_TEST(the_kept_state_is_each_streams_version_and_balance)
{
	state_is("A", 0, 0, 0);	/* a stream that does not exist */
	put("A", 0, EVENT_CREDITED, 10);
	state_is("A", 0, 1, 10);	/* in the group, before its commit */
	put("A", 1, EVENT_DEBITED, 3);
	state_is("A", 0, 2, 7);
	store_new_event t[2] = {	/* a transfer moves both */
		ev("A", 2, EVENT_DEBITED, 7),
		ev("B", 0, EVENT_CREDITED, 7),
	};
	uint64_t pos;
	ck_assert_int_eq(store_append(s, t, 2, 0, &pos), ERR_OK);
	state_is("A", 0, 3, 0);
	state_is("B", 0, 1, 7);
	state_is("nobody", 0, 0, 0);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	state_is("A", 0, 3, 0);	/* outside a group: what was written */
	state_is("B", 0, 1, 7);
	put("B", 1, EVENT_DEBITED, 2);
	store_new_event twice[2] = {	/* one stream twice in one append */
		ev("C", 0, EVENT_CREDITED, 4),
		ev("C", 1, EVENT_DEBITED, 1),
	};
	ck_assert_int_eq(store_append(s, twice, 2, 0, &pos), ERR_OK);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	/* the key an append gave back, and a wrong hint, which is only that */
	uint32_t kb = 0;
	store_new_event e = ev("B", 2, EVENT_CREDITED, 1);
	e.stream_key = &kb;
	ck_assert_int_eq(store_append(s, &e, 1, 0, &pos), ERR_OK);
	uint32_t key = 0;
	uint64_t v;
	int64_t b;
	ck_assert_int_eq(store_stream_state(s, "B", 1, &key, &v, &b), ERR_OK);
	ck_assert_uint_eq(key, kb);
	state_is("C", kb, 2, 3);
	state_is("C", 99, 2, 3);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	if (!durable())
		return;
	reopen();	/* the same, read from what the store kept */
	state_is("A", 0, 3, 0);
	state_is("B", 0, 3, 6);
	state_is("C", 0, 2, 3);
	state_is("nobody", 0, 0, 0);
	put("B", 3, EVENT_DEBITED, 6);
	state_is("B", 0, 4, 0);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	reopen();
	state_is("B", 0, 4, 0);
	ck_assert_uint_eq(head(), 9);
}
END_TEST

/* The store keeps each balance in 0..INT64_MAX: an append that would take
 * one out fails, as the store's failure, and writes nothing. */
START_TEST(an_append_out_of_the_balance_range_fails_and_writes_nothing)
{
	put("A", 0, EVENT_CREDITED, 10);
	put("MAX", 0, EVENT_CREDITED, INT64_MAX);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	uint64_t pos = 99, n;
	store_new_event bad[][2] = {
		{ ev("A", 1, EVENT_DEBITED, 11) },	/* below 0 */
		{ ev("A", 1, EVENT_DEBITED, 11),	/* the credit is never made */
		  ev("new", 0, EVENT_CREDITED, 11) },
		{ ev("A", 1, EVENT_CREDITED, 5),	/* 15 after the first */
		  ev("A", 2, EVENT_DEBITED, 16) },
		{ ev("new", 0, EVENT_CREDITED, 1),	/* the second fails */
		  ev("A", 1, EVENT_DEBITED, 11) },
		{ ev("MAX", 1, EVENT_CREDITED, 1) },	/* past INT64_MAX */
	};
	size_t len[] = { 1, 2, 2, 2, 1 };
	for (size_t i = 0; i < sizeof len / sizeof *len; i++) {
		ck_assert_msg(store_append(s, bad[i], len[i], 0, &pos) == ERR_STORAGE,
			      "append %zu was not refused", i);
		ck_assert_str_ne(store_errmsg(s), "");
		/* a group that failed is reported at its commit, once */
		ck_assert_int_eq(store_commit(s), durable() ? ERR_STORAGE : ERR_OK);
		ck_assert_int_eq(store_commit(s), ERR_OK);
		ck_assert_uint_eq(pos, 99);
		ck_assert_uint_eq(head(), 2);
		state_is("A", 0, 1, 10);
		state_is("MAX", 0, 1, INT64_MAX);
		state_is("new", 0, 0, 0);
		ck_assert_int_eq(store_stream_count(s, &n), ERR_OK);
		ck_assert_uint_eq(n, 2);
	}
	seen r = { 0 };
	ck_assert_int_eq(store_read_all(s, 0, 10, record, &r), ERR_OK);
	ck_assert_uint_eq(r.n, 2);
	/* and the next append goes on from there, without a gap */
	ck_assert_uint_eq(put("A", 1, EVENT_DEBITED, 10), 3);
	state_is("A", 0, 2, 0);
	ck_assert_int_eq(store_commit(s), ERR_OK);
	if (!durable())
		return;
	reopen();
	ck_assert_uint_eq(head(), 3);
	state_is("A", 0, 2, 0);
	state_is("new", 0, 0, 0);
}
END_TEST

/* A test case on a fresh store each test. A durable store gets longer
 * than Check's 4 s default (200,000 appends to a file under ASan on a busy
 * machine, a server's round trips); CK_DEFAULT_TIMEOUT, set, still wins. */
static TCase *fresh_case(const char *name)
{
	TCase *t = tcase_create(name);
	tcase_add_checked_fixture(t, setup, teardown);
	if (durable() && !getenv("CK_DEFAULT_TIMEOUT"))
		tcase_set_timeout(t, 60);
	return t;
}

static Suite *store_suite(void)
{
	Suite *su = suite_create("store");
	TCase *t = fresh_case("append");
	tcase_add_test(t, empty_store);
	tcase_add_test(t, positions_are_gapless_and_versions_per_stream);
	tcase_add_test(t, stale_expected_version_conflicts_and_writes_nothing);
	tcase_add_test(t, two_stream_append_is_all_or_nothing);
	tcase_add_test(t, one_append_may_hold_a_stream_twice);
	tcase_add_test(t, a_conflict_puts_back_a_new_stream);
	suite_add_tcase(su, t);
	t = fresh_case("state");
	tcase_add_test(t, the_kept_state_is_each_streams_version_and_balance);
	tcase_add_test(t, an_append_out_of_the_balance_range_fails_and_writes_nothing);
	suite_add_tcase(su, t);
	t = fresh_case("keep");
	tcase_add_test(t, reopened_the_store_is_as_left);
	tcase_add_test(t, a_group_not_committed_is_not_kept);
	tcase_add_test(t, the_kept_sheet_moves_only_from_its_checkpoint);
	tcase_add_test(t, poll_says_when_anyone_committed);
	tcase_add_test(t, location_and_created);
	tcase_add_test(t, the_wait_hook_ends_a_wait_for_the_lock);
	suite_add_tcase(su, t);
	t = fresh_case("hints");
	tcase_add_test(t, an_append_gives_back_the_stream_key);
	tcase_add_test(t, a_wrong_stream_key_is_only_a_hint);
	suite_add_tcase(su, t);
	t = fresh_case("read");
	tcase_add_test(t, read_stream_after_a_version);
	tcase_add_test(t, read_all_in_batches_and_stop_early);
	tcase_add_test(t, many_events_cross_blocks);
	tcase_add_test(t, streams_are_listed_by_prefix);
	suite_add_tcase(su, t);
	t = tcase_create("open");
	tcase_add_test(t, unknown_uris_do_not_open);
	tcase_add_test(t, passwords_never_show);
	tcase_add_test(t, password_forms_masked);
	suite_add_tcase(su, t);
	return su;
}

UNIT_MAIN(store_suite)
