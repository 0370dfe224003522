/* store_pg.c — the postgresql:// store: one ledger for shells on many machines.
 *
 * Tables (see README, "The PostgreSQL store"): events, one row per event;
 * streams, each account's version and balance (the aggregate's snapshot,
 * written with its events); balances and checkpoint, the shared balance
 * sheet; simplecqrs_meta, the schema version. Every statement is prepared
 * once and takes parameters.
 *
 * Positions without gaps, in commit order. Every write transaction first
 * takes one transaction-scoped advisory lock, so writers commit one after
 * another, and each takes the next position as max + 1 under the lock (as
 * Commanded's event store does). A position is therefore visible before the
 * next one is handed out, and a refresh reading "position > checkpoint"
 * can never pass over an event that commits later. The cost: appends from
 * all shells are serialised, one commit at a time; group commit (below)
 * makes each of those commits carry many commands.
 *
 * Writes are gathered in a group, as in the SQLite store: the first write
 * after a commit opens the transaction and takes the lock, later ones join
 * it, and store_commit ends it. The session commits before showing a result.
 * Under the lock store_sql's writer table knows every stream it touches, so
 * an append asks the server nothing: its events are queued here and sent in
 * bulk (one INSERT ... SELECT FROM unnest(...) per batch, with the streams'
 * rows and the sheet's as one statement each, and the COMMIT, in one libpq
 * pipeline: a group costs about one round trip). A read inside a group
 * sends the queue first, so it sees the group's own events.
 *
 * The session is set up at connect rather than inherited from the
 * database's or role's defaults: read committed (the max + 1 above needs a
 * fresh snapshot after the lock is granted), schema public unless the
 * client's own options name a search_path, LISTEN for other shells'
 * commits (each write group sends a NOTIFY, delivered at its commit, so an
 * idle prompt learns of them without a query). A connection lost outside
 * any transaction (the shell waiting for input while the server restarts)
 * is made again and the statement run once more, as psql does; one lost in
 * a group is that group's failure. Every message that can quote connection
 * text is scrubbed of the password first.
 *
 * The append, the sheet's save and load and the schema decision at open are
 * store_sql.c's algorithms; this file gives them its statements (pg_prims). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <libpq-fe.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/xmalloc.h"
#include "secret.h"
#include "store_impl.h"
#include "store_sql.h"

#define SCHEMA_VERSION 2	/* simplecqrs_meta's schema_version this build writes */
#define WRITE_LOCK "1396920658"	/* the advisory lock key: "SCQR" */
#define CHANNEL "simplecqrs"	/* LISTEN/NOTIFY: a write group committed */
#define LOCK_WAIT_MS 10000	/* a wait with no commit by anyone: busy */
#define PROGRESS_EVERY_MS 1000	/* how often a waiter looks at the head */
#define RECONNECT_EVERY_MS 2000	/* an idle prompt's tries at a lost server */

/* Every session, at connect and after a reconnect. search_path is set
 * unless the client itself named one (options=-csearch_path=... in the
 * URI, or PGOPTIONS): a database's or role's default does not count. */
static const char session_setup[] =
	"SET client_min_messages = warning; "
	"SET lock_timeout = '10s'; "
	"SET default_transaction_isolation = 'read committed'; "
	"SELECT set_config('search_path', 'public', false) FROM pg_settings "
	"WHERE name = 'search_path' AND source <> 'client'; "
	"LISTEN " CHANNEL;

/* streams.balance is the account's kept state, taken at balance_version,
 * which must be the row's version: a program of schema 1 still connected
 * to an upgraded ledger moves version (or adds a row) without balance, and
 * so fails (its transaction rolls back) rather than leave a stale balance
 * that this one would decide on. The column has no default. */
#define BALANCE_TAKEN "streams_balance_taken"

static const char schema[] =
	"CREATE TABLE simplecqrs_meta (\n"
	"  key text PRIMARY KEY,\n"
	"  value text NOT NULL\n"
	");\n"
	"CREATE TABLE streams (\n"
	"  name text PRIMARY KEY,\n"
	"  version bigint NOT NULL CHECK (version > 0),\n"
	"  balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),\n"
	"  balance_version bigint NOT NULL,\n"
	"  CONSTRAINT " BALANCE_TAKEN " CHECK (balance_version = version)\n"
	") WITH (fillfactor = 50);\n"
	"CREATE TABLE events (\n"
	"  position bigint PRIMARY KEY CHECK (position > 0),\n"
	"  stream text NOT NULL,\n"
	"  version bigint NOT NULL CHECK (version > 0),\n"
	"  type text NOT NULL CHECK (type IN ('AccountCredited', 'AccountDebited')),\n"
	"  amount bigint NOT NULL CHECK (amount > 0),\n"
	"  time timestamptz NOT NULL,\n"
	"  UNIQUE (stream, version)\n"
	");\n"
	"CREATE TABLE balances (\n"
	"  account text PRIMARY KEY,\n"
	"  balance bigint NOT NULL CHECK (balance >= 0)\n"
	") WITH (fillfactor = 50);\n"
	"CREATE TABLE checkpoint (\n"
	"  id int PRIMARY KEY CHECK (id = 1),\n"
	"  position bigint NOT NULL\n"
	");\n"
	"INSERT INTO checkpoint VALUES (1, 0);\n";

/* Schema 1 to 2: each stream's balance beside its version, added up from
 * its events, in the one transaction of the upgrade (schema_lock's). A sum
 * that leaves 0..INT64_MAX fails the upgrade, which then changes nothing.
 * The events' foreign key to streams goes: checked per row it was half
 * the cost of an event's insert, and what it kept true is kept by the
 * writer (a stream's row is written with its events, in their
 * transaction) and checked where it matters (a stream's row against its
 * events when read; an event of a stream without a row is a damaged
 * ledger there, and collides with the unique (stream, version) on write);
 * SQLite never enforced it. streams and balances are rewritten row by row
 * every group: half-empty pages let the update stay in the page (a HOT
 * update, no index entry), three times cheaper. */
static const char upgrade_1_2[] =
	"ALTER TABLE streams ADD COLUMN balance bigint NOT NULL DEFAULT 0 "
	"CHECK (balance >= 0), ADD COLUMN balance_version bigint;\n"
	"UPDATE streams SET balance = e.balance FROM (SELECT stream, "
	"sum(CASE type WHEN 'AccountCredited' THEN amount ELSE -amount END) "
	"AS balance FROM events GROUP BY stream) e WHERE e.stream = streams.name;\n"
	"UPDATE streams SET balance_version = version;\n"
	"ALTER TABLE streams ALTER COLUMN balance_version SET NOT NULL, "
	"ADD CONSTRAINT " BALANCE_TAKEN " CHECK (balance_version = version);\n"
	"ALTER TABLE events DROP CONSTRAINT IF EXISTS events_stream_fkey;\n"
	"ALTER TABLE streams SET (fillfactor = 50);\n"
	"ALTER TABLE balances SET (fillfactor = 50);\n"
	"UPDATE simplecqrs_meta SET value = '2' WHERE key = 'schema_version';\n";

typedef struct query {
	const char *name;
	const char *sql;
	int params;
} query;

enum {
	Q_HEAD, Q_STREAM_LOAD, Q_STREAMS_ALL, Q_EVENTS_AFTER, Q_EVENTS_PUT,
	Q_STREAMS_NEW, Q_STREAMS_SET,
	Q_READ_STREAM, Q_READ_ALL, Q_STREAM_COUNT,
	Q_STREAMS, Q_CHECKPOINT, Q_CHECKPOINT_MOVE, Q_CHECKPOINT_SET,
	Q_BALANCES_PUT, Q_BALANCES_CLEAR, Q_BALANCES, Q_NOTIFY, Q_COMMIT,
	Q_COUNT
};

#define EVENT_COLUMNS "position, version, type, amount, " \
	"(extract(epoch FROM time) * 1000)::bigint"

static const query queries[Q_COUNT] = {
	[Q_HEAD] = { "head", "SELECT coalesce(max(position), 0) FROM events", 0 },
	/* the row, and where its events end (one step down the unique index) */
	[Q_STREAM_LOAD] = { "stream_load",
		"SELECT s.version, s.balance, (SELECT coalesce(max(e.version), 0) "
		"FROM events e WHERE e.stream = $1) FROM (SELECT) n "
		"LEFT JOIN streams s ON s.name = $1", 1 },
	[Q_STREAMS_ALL] = { "streams_all",
		"SELECT n.name, coalesce(s.version, 0), coalesce(s.balance, 0), "
		"(SELECT coalesce(max(e.version), 0) FROM events e "
		"WHERE e.stream = n.name) FROM (SELECT name FROM streams UNION "
		"SELECT stream FROM events) n LEFT JOIN streams s USING (name)", 0 },
	[Q_EVENTS_AFTER] = { "events_after",
		"SELECT stream, version, type, amount, position FROM events "
		"WHERE position > $1 ORDER BY position", 1 },
	/* a batch of queued events: each column one array (text parameters) */
	[Q_EVENTS_PUT] = { "events_put",
		"INSERT INTO events (position, stream, version, type, amount, time) "
		"SELECT p, s, v, CASE t WHEN 1 THEN 'AccountCredited' "
		"ELSE 'AccountDebited' END, a, "
		"timestamptz 'epoch' + m * interval '1 millisecond' "
		"FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[], "
		"$5::bigint[], $6::bigint[]) AS u (p, s, v, t, a, m)", 6 },
	/* the group's moved streams: the rows of new ones (streams go by
	 * name), the others' new versions and balances */
	[Q_STREAMS_NEW] = { "streams_new",
		"INSERT INTO streams (name, version, balance, balance_version) "
		"SELECT n, v, b, v FROM unnest($1::text[], $2::bigint[], "
		"$3::bigint[]) AS u (n, v, b)", 3 },
	[Q_STREAMS_SET] = { "streams_set",
		"UPDATE streams s SET version = u.v, balance = u.b, "
		"balance_version = u.v "
		"FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u (n, v, b) "
		"WHERE s.name = u.n", 3 },
	[Q_READ_STREAM] = { "read_stream",
		"SELECT " EVENT_COLUMNS " FROM events "
		"WHERE stream = $1 AND version > $2 ORDER BY version", 2 },
	[Q_READ_ALL] = { "read_all",
		"SELECT " EVENT_COLUMNS ", stream FROM events "
		"WHERE position > $1 ORDER BY position LIMIT $2", 2 },
	[Q_STREAM_COUNT] = { "stream_count", "SELECT count(*) FROM streams", 0 },
	[Q_STREAMS] = { "streams",
		"SELECT name FROM streams WHERE starts_with(name, $1)", 1 },
	[Q_CHECKPOINT] = { "checkpoint",
		"SELECT position FROM checkpoint WHERE id = 1", 0 },
	[Q_CHECKPOINT_MOVE] = { "checkpoint_move",
		"UPDATE checkpoint SET position = $2 WHERE id = 1 AND position = $1", 2 },
	[Q_CHECKPOINT_SET] = { "checkpoint_set",
		"UPDATE checkpoint SET position = $1 WHERE id = 1", 1 },
	[Q_BALANCES_PUT] = { "balances_put",
		"INSERT INTO balances (account, balance) "
		"SELECT * FROM unnest($1::text[], $2::bigint[]) "
		"ON CONFLICT (account) DO UPDATE SET balance = excluded.balance", 2 },
	[Q_BALANCES_CLEAR] = { "balances_clear", "DELETE FROM balances", 0 },
	[Q_BALANCES] = { "balances", "SELECT account, balance FROM balances", 0 },
	/* the NOTIFY reaches the listeners when (and only if) the group commits */
	[Q_NOTIFY] = { "notify", "SELECT pg_notify('" CHANNEL "', '')", 0 },
	[Q_COMMIT] = { "commit", "COMMIT", 0 },
};

/* The most events sent in one statement: the queue's memory is bounded,
 * and a batch this size is well past where the round trip matters. */
#define BATCH_MAX 8192

/* Events queued for the next flush: each column as the text of the array
 * parameter it becomes ("{1,2,3"; the closing brace added when sent). */
typedef struct queue {
	buf col[6];	/* position, stream, version, type, amount, time */
	store_event *ev;	/* the same events, for a read in the group
				   (stream: the writer table's name) */
	size_t n, cap;
} queue;

typedef struct pg_store {
	struct store base;
	PGconn *conn;
	PGconn *watch;		/* made when a wait for the write lock lasts a
				   second: reads the head while conn waits in
				   the server's queue; closed when the wait
				   ends (a server backend less per shell) */
	char *uri;		/* as given: what messages are scrubbed of */
	store_sql_writer *writer;	/* the streams, true under the lock */
	queue q;		/* in a group: events not sent yet */
	buf cols[8];		/* the flush's other arrays: streams new and
				   stored, sheet */
	bool committing;	/* pg_commit's flush: COMMIT goes with it */
	bool committed;		/* ... and went, and worked */
	bool broken;		/* a flush of this group failed: the group is
				   lost, and says so with the first failure */
	char broken_why[sizeof ((store *)0)->errmsg];
	long commit_delay_ms;	/* test hook: hold each group open this long */
	bool busy;		/* the last failure was another session's lock
				   (lock_timeout) outside any group */
	bool connecting;	/* setting up a session: no reconnect inside */
	struct timespec tried;	/* when poll last tried a lost connection */
	PostgresPollingStatusType resetting;	/* poll's reset under way
				   (PGRES_POLLING_READING or _WRITING: what it
				   waits for), else PGRES_POLLING_FAILED */
} pg_store;

/* ---- talking to the server ---- */

/* libpq's message on one line: its lines joined ("server closed the
 * connection unexpectedly\n\tThis probably means ..." is two sentences),
 * runs of blanks as one, control bytes as '?'. */
static void one_line(const char *msg, char *out, size_t out_len)
{
	size_t n = 0;
	const char *sep = NULL;	/* goes before the next visible byte */
	for (const char *p = msg; *p && n + 1 < out_len; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\n') {
			bool continued = p[1] == '\t' || p[1] == ' ';
			while (p[1] == '\t' || p[1] == ' ')
				p++;
			bool ended = n > 0 && strchr(".:;,!?", out[n - 1]) != NULL;
			if (n == 0)
				sep = NULL;
			else if (!continued)	/* another message */
				sep = ended ? " " : "; ";
			else	/* the same message, maybe a new sentence */
				sep = !ended && isupper((unsigned char)p[1]) ? ". " : " ";
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r') {
			if (n > 0 && sep == NULL)
				sep = " ";
			continue;
		}
		for (; sep && *sep && n + 2 < out_len; sep++)
			out[n++] = *sep;
		sep = NULL;
		out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (n > 0 && out[n - 1] == '.')	/* callers go on after it */
		n--;
	out[n] = '\0';
}

/* msg, scrubbed of every form of the password, on one line. */
static void clean(pg_store *g, const char *msg, char *out, size_t out_len)
{
	const char *env = getenv("PGPASSWORD");
	size_t cap = 3 * strlen(msg) + 8;	/* "***" for each byte, at most */
	char *text = xmalloc(cap);
	snprintf(text, cap, "%s", msg);
	secret_scrub(g->uri, env, text, cap);
	one_line(text, out, out_len);
	free(text);
	secret_scrub(g->uri, env, out, out_len);	/* in case joining made one */
}

static error_code db_fail(pg_store *g, const char *what, const PGresult *res)
{
	char msg[200];
	const char *text = res ? PQresultErrorMessage(res) : "";
	clean(g, text[0] ? text : PQerrorMessage(g->conn), msg, sizeof msg);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* lock_timeout: in a group, that group is lost (storage); outside
	 * one, nothing was written and nothing is in doubt */
	g->busy = state && strcmp(state, "55P03") == 0 && !g->base.in_group;
	if (g->busy)
		return store_base_fail(&g->base, "%s: another session holds a lock on "
				       "the ledger's tables", what);
	return store_base_fail(&g->base, "%s: %s", what, msg[0] ? msg : "the server failed");
}

/* What a failed call that may have waited for a lock returns. */
static error_code failed(const pg_store *g)
{
	return g->busy ? ERR_BUSY : ERR_STORAGE;
}

static bool reconnect(pg_store *g, const char *what);
/* This store's statements for store_sql's algorithms (defined below). */
static const store_sql_prims pg_prims;

/* A statement about to run may be run again on a new connection if this
 * one is lost: nothing is open on it whose loss would lose something
 * (no group, no transaction; a connection already known lost has none). */
static bool may_retry(const pg_store *g)
{
	if (g->connecting || g->base.in_group)
		return false;
	PGTransactionStatusType t = PQtransactionStatus(g->conn);
	return t == PQTRANS_IDLE || t == PQTRANS_UNKNOWN;
}

/* Gone, or being made again by poll (a statement finishes that first). */
static bool is_lost(const pg_store *g)
{
	return PQstatus(g->conn) != CONNECTION_OK;
}

/* Runs a prepared statement; NULL (and the store's errmsg set) unless the
 * server answered as expected. */
static PGresult *exec(pg_store *g, int which, const char *const *params,
		      const char *what)
{
	bool retry = may_retry(g);
	for (;;) {
		PGresult *res = PQexecPrepared(g->conn, queries[which].name,
					       queries[which].params, params,
					       NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
			return res;
		if (retry && is_lost(g)) {
			PQclear(res);
			retry = false;
			if (reconnect(g, what))
				continue;
			return NULL;
		}
		db_fail(g, what, res);
		PQclear(res);
		return NULL;
	}
}

/* Runs plain SQL (the last statement's result counts); false on failure. */
static bool command(pg_store *g, const char *sql, const char *what)
{
	bool retry = may_retry(g);
	for (;;) {
		PGresult *res = PQexec(g->conn, sql);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
			  PQresultStatus(res) == PGRES_TUPLES_OK;
		if (!ok && retry && is_lost(g)) {
			PQclear(res);
			retry = false;
			if (reconnect(g, what))
				continue;
			return false;
		}
		if (!ok)
			db_fail(g, what, res);
		PQclear(res);
		return ok;
	}
}

/* Ends the open transaction, whatever state it is in, keeping errmsg. */
static void abandon(pg_store *g)
{
	PQclear(PQexec(g->conn, "ROLLBACK"));
}

static unsigned ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(now.tv_sec - t0->tv_sec) * 1000 +
		       (now.tv_nsec - t0->tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > 0xfffffff ? 0xfffffff : (unsigned)ms;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
	nanosleep(&ts, NULL);
}

/* The head as another session sees it, read on the watch connection
 * (made at the first call; its lock waits are short, so a foreign table
 * lock cannot hold the waiter here). false: not known. */
static bool watch_head(pg_store *g, int64_t *head)
{
	if (g->watch == NULL) {
		g->watch = PQconnectdb(g->uri);
		if (g->watch && PQstatus(g->watch) == CONNECTION_OK)
			PQclear(PQexec(g->watch, "SET lock_timeout = '200ms'; "
				       "SET statement_timeout = '500ms'"));
	}
	if (g->watch == NULL || PQstatus(g->watch) != CONNECTION_OK)
		return false;
	PGresult *res = PQexec(g->watch, "SELECT coalesce(max(position), 0) "
			       "FROM events");
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (ok)
		*head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ok;
}

/* Runs sql, the statement that takes the write lock (it waits in the
 * server's queue for the lock, so waiting writers take turns fairly), and
 * while it waits asks the wait hook about every 100 ms (Ctrl-C at the
 * prompt). With watch, every PROGRESS_EVERY_MS it reads the head on a
 * second connection: the wait goes on, its place in the queue kept, as
 * long as others commit, and gives up only when the head has not moved
 * for LOCK_WAIT_MS (without watch: after LOCK_WAIT_MS). Given up, the
 * statement is cancelled and the answer is ERR_BUSY, nothing written. */
static error_code take_lock(pg_store *g, const char *sql, bool watch)
{
	g->busy = false;
	if (!PQsendQuery(g->conn, sql)) {
		db_fail(g, "cannot take the write lock", NULL);
		return ERR_STORAGE;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool cancelled = false, stopped = false;	/* stopped: by the wait hook */
	unsigned moved = 0, looked = 0;	/* ms waited when the head last
					   moved, when it was last read */
	int64_t seen = -1;
	while (PQconsumeInput(g->conn) && PQisBusy(g->conn)) {
		unsigned waited = ms_since(&t0);
		int64_t head;
		if (watch && !cancelled && waited >= looked + PROGRESS_EVERY_MS) {
			looked = waited;
			if (watch_head(g, &head)) {
				if (seen >= 0 && head != seen)
					moved = waited;
				seen = head;
			}
			waited = ms_since(&t0);
		}
		if (!cancelled && waited > 0 && waited - moved < LOCK_WAIT_MS &&
		    !store_base_waiting(&g->base, waited))
			stopped = true;
		if (!cancelled && waited > 0 &&
		    (waited - moved >= LOCK_WAIT_MS || stopped)) {
			char ignored[256];
			PGcancel *c = PQgetCancel(g->conn);
			if (c) {	/* a cancel that finds it done does nothing */
				PQcancel(c, ignored, sizeof ignored);
				PQfreeCancel(c);
			}
			cancelled = true;
		}
		struct pollfd fd = { .fd = PQsocket(g->conn), .events = POLLIN };
		poll(&fd, 1, 100);
	}
	PQfinish(g->watch);
	g->watch = NULL;
	error_code rc = ERR_OK;
	for (PGresult *res; (res = PQgetResult(g->conn)) != NULL; PQclear(res)) {
		if (rc != ERR_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
			continue;
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool timed_out = state && (strcmp(state, "55P03") == 0 ||
					   strcmp(state, "57014") == 0);
		db_fail(g, "cannot take the write lock", res);
		rc = ERR_STORAGE;
		if (timed_out)
			rc = ERR_BUSY;
	}
	if (rc == ERR_OK && is_lost(g))
		rc = db_fail(g, "cannot take the write lock", NULL);
	if (rc == ERR_OK && cancelled)
		rc = ERR_BUSY;	/* granted as it was given up: given up */
	if (rc == ERR_BUSY) {
		g->busy = true;
		store_base_fail(&g->base, stopped
				? "the wait for the ledger's write lock was "
				  "ended (another program holds it)"
				: "another program holds the ledger's write lock "
				  "(nobody committed for %d s)", LOCK_WAIT_MS / 1000);
	}
	return rc;
}

static int64_t int_at(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static uint64_t rows_changed(const PGresult *res)
{
	return strtoull(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* Formats v for a parameter. */
static const char *num(char out[24], int64_t v)
{
	snprintf(out, 24, "%lld", (long long)v);
	return out;
}

/* ---- the queue, and the arrays it sends ---- */

static void queue_clear(queue *q)
{
	for (size_t i = 0; i < sizeof q->col / sizeof *q->col; i++)
		q->col[i].len = 0;
	q->n = 0;
}

static void queue_free(queue *q)
{
	for (size_t i = 0; i < sizeof q->col / sizeof *q->col; i++)
		buf_free(&q->col[i]);
	free(q->ev);
}

/* One more element of an array's text ("{" before the first). */
static void put_num(buf *b, int64_t v)
{
	buf_putc(b, b->len ? ',' : '{');
	buf_put_i64(b, v);
}

/* Quoted, as an array element: ids are plain, but the quotes cost nothing
 * and keep any name (NULL, a comma) one element. */
static void put_text(buf *b, const char *text, size_t len)
{
	buf_reserve(b, 2 * len + 3);
	buf_putc(b, b->len ? ',' : '{');
	buf_putc(b, '"');
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '"' || text[i] == '\\')
			buf_putc(b, '\\');
		buf_putc(b, text[i]);
	}
	buf_putc(b, '"');
}

/* The array's text, closed (the buffer is emptied after it is sent). */
static const char *array_of(buf *b)
{
	if (b->len == 0)
		buf_putc(b, '{');
	buf_putc(b, '}');
	return buf_cstr(b);
}

/* ---- groups: store.c keeps the state, these are the transactions ---- */

static error_code pg_begin(store *s)
{
	pg_store *g = (pg_store *)s;
	/* read committed whatever the session says: the head is read after
	 * the lock is granted, in a snapshot taken then */
	/* the server's lock_timeout off for the write lock: take_lock's
	 * watch decides, and lock_timeout is back for the group's own waits
	 * (a foreign table lock) once the lock is granted */
	if (!command(g, "BEGIN ISOLATION LEVEL READ COMMITTED; "
		     "SET LOCAL lock_timeout = 0", "cannot start a transaction"))
		return ERR_STORAGE;
	error_code rc = take_lock(g, "SELECT pg_advisory_xact_lock(" WRITE_LOCK "), "
				  "set_config('lock_timeout', '10s', true)", true);
	if (rc == ERR_OK)
		rc = store_sql_begun(s, &pg_prims, g->writer);
	if (rc != ERR_OK) {
		abandon(g);
		if (rc != ERR_BUSY)
			rc = failed(g);
		return rc;
	}
	queue_clear(&g->q);
	g->broken = false;
	return ERR_OK;
}

/* The first failure of a flush, again: a read in the group that sent the
 * queue failed, and store.c drops the group only at its commit. */
static error_code still_broken(pg_store *g)
{
	memcpy(g->base.errmsg, g->broken_why, sizeof g->broken_why);
	return ERR_STORAGE;
}

static error_code pg_commit(store *s)
{
	pg_store *g = (pg_store *)s;
	error_code rc;
	g->committed = false;
	if (g->broken)
		return still_broken(g);
	if (g->commit_delay_ms > 0) {	/* the gap test's slow writer: its
					   events are in, the COMMIT waits */
		if ((rc = store_sql_flush(s, &pg_prims, g->writer)) != ERR_OK)
			return rc;
		nap_ms(g->commit_delay_ms);
	} else {	/* the flush's pipeline ends with the COMMIT */
		g->committing = true;
		rc = store_sql_flush(s, &pg_prims, g->writer);
		g->committing = false;
		if (rc != ERR_OK)
			return rc;
	}
	if (!g->committed) {
		PGresult *res = exec(g, Q_NOTIFY, NULL, "cannot commit");
		if (res == NULL)
			return ERR_STORAGE;
		PQclear(res);
		res = PQexecPrepared(g->conn, queries[Q_COMMIT].name, 0, NULL,
				     NULL, NULL, 0);
		/* a transaction that failed answers COMMIT with ROLLBACK */
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
			  strcmp(PQcmdStatus(res), "COMMIT") == 0;
		if (!ok)
			db_fail(g, "cannot commit", res);
		PQclear(res);
		if (!ok)
			return ERR_STORAGE;
	}
	g->committed = false;
	store_sql_committed(g->writer);
	return ERR_OK;
}

static void pg_rollback(store *s)
{
	pg_store *g = (pg_store *)s;
	abandon(g);
	queue_clear(&g->q);
	g->broken = false;
	store_sql_rolled_back(g->writer);
}

/* ---- the primitives of store_sql's write group ---- */

static error_code pg_file_head(store *s, uint64_t *head);

/* The stream's row, and a check that it agrees with its events (under the
 * write lock only a damaged ledger makes them disagree, and writing on
 * from the row would then collide or leave a gap). Streams go by name: the
 * key stays 0. */
static error_code pg_stream_load(store *s, store_sql_stream *st)
{
	pg_store *g = (pg_store *)s;
	char *name = xstrndup(st->name, st->len);
	const char *params[1] = { name };
	PGresult *res = exec(g, Q_STREAM_LOAD, params, "cannot read a stream");
	free(name);
	if (res == NULL)
		return failed(g);
	st->key = 0;
	st->version = 0;
	st->balance = 0;
	/* one row always: the stream's (NULL when it has none), its events' */
	st->stored = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
	int64_t version = st->stored ? int_at(res, 0, 0) : 0;
	int64_t events = PQntuples(res) == 1 ? int_at(res, 0, 2) : 0;
	st->balance = st->stored ? int_at(res, 0, 1) : 0;
	PQclear(res);
	if (!st->stored && events == 0)
		return ERR_OK;
	if (version != events || version <= 0)
		return store_base_fail(s, "damaged ledger: account %.64s is kept "
				       "at version %lld but its events end at "
				       "version %lld", st->name, (long long)version,
				       (long long)events);
	st->version = (uint64_t)version;
	return ERR_OK;
}

/* Every stream row, each checked as pg_stream_load checks one (a small
 * ledger's, at group start: a name not among them then needs no look). */
static error_code pg_streams_all(store *s,
				 int (*fn)(void *ctx, const store_sql_stream *st),
				 void *ctx)
{
	pg_store *g = (pg_store *)s;
	PGresult *res = exec(g, Q_STREAMS_ALL, NULL, "cannot read the streams");
	if (res == NULL)
		return ERR_STORAGE;
	error_code rc = ERR_OK;
	for (int r = 0; r < PQntuples(res) && rc == ERR_OK; r++) {
		const char *name = PQgetvalue(res, r, 0);
		int64_t version = int_at(res, r, 1), events = int_at(res, r, 3);
		store_sql_stream st = { .name = name, .len = strlen(name),
					.version = (uint64_t)version,
					.balance = int_at(res, r, 2), .stored = true };
		if (version != events || version <= 0 || st.balance < 0)
			rc = store_base_fail(s, "damaged ledger: account %.64s is "
					     "kept at version %lld, balance %lld, "
					     "but its events end at version %lld",
					     name, (long long)version,
					     (long long)st.balance, (long long)events);
		else
			fn(ctx, &st);
	}
	PQclear(res);
	return rc;
}

/* Queues the event: its position is decided, nothing comes back, so it
 * waits for the flush (when the batch is full, pg_append sends it). */
static error_code pg_event_add(store *s, const store_sql_event *ev)
{
	queue *q = &((pg_store *)s)->q;
	put_num(&q->col[0], (int64_t)ev->position);
	put_text(&q->col[1], ev->stream->name, ev->stream->len);
	put_num(&q->col[2], (int64_t)ev->version);
	put_num(&q->col[3], ev->type == EVENT_DEBITED ? 2 : 1);
	put_num(&q->col[4], ev->amount);
	put_num(&q->col[5], ev->time_ms);
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 1024;
		q->ev = xreallocarray(q->ev, q->cap, sizeof *q->ev);
	}
	q->ev[q->n++] = (store_event){
		.position = ev->position, .stream = ev->stream->name,
		.version = ev->version, .type = ev->type, .amount = ev->amount,
		.time_ms = ev->time_ms,
	};
	return ERR_OK;
}

static error_code pg_events_after(store *s, uint64_t after,
				  int (*fn)(void *ctx, int64_t key,
					    const char *name, uint64_t position,
					    uint64_t version, event_type type,
					    int64_t amount),
				  void *ctx)
{
	pg_store *g = (pg_store *)s;
	char a[24];
	const char *params[1] = { num(a, (int64_t)after) };
	PGresult *res = exec(g, Q_EVENTS_AFTER, params,
			     "cannot read the events of other shells");
	if (res == NULL)
		return ERR_STORAGE;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *type = PQgetvalue(res, r, 2);
		if (fn(ctx, 0, PQgetvalue(res, r, 0), (uint64_t)int_at(res, r, 4),
		       (uint64_t)int_at(res, r, 1),
		       strcmp(type, "AccountDebited") == 0 ? EVENT_DEBITED
		       : strcmp(type, "AccountCredited") == 0 ? EVENT_CREDITED
		       : (event_type)0,	/* a damaged ledger's: the catch-up says */
		       int_at(res, r, 3)))
			break;
	}
	PQclear(res);
	return ERR_OK;
}

/* A statement of the flush's pipeline, and how to judge its answer. */
typedef struct sent {
	int which;
	const char *what;	/* for the message when it fails */
	int64_t rows;		/* the rows it must change; -1: any */
} sent;

/* Sends statement which, in pipeline mode. */
static bool send(pg_store *g, sent *list, int *n, int which, const char *what,
		 int64_t rows, const char *const *params)
{
	list[(*n)++] = (sent){ which, what, rows };
	return PQsendQueryPrepared(g->conn, queries[which].name,
				   queries[which].params, params, NULL, NULL,
				   0) == 1;
}

/* Reads the pipeline's answers, statement by statement, then its sync:
 * the first failure is the flush's (the server skips the rest). */
static error_code pipeline_results(pg_store *g, const sent *list, int n)
{
	error_code rc = ERR_OK;
	for (int i = 0; i < n; i++) {
		bool got = false;
		for (PGresult *res; (res = PQgetResult(g->conn)) != NULL; PQclear(res)) {
			got = true;
			ExecStatusType st = PQresultStatus(res);
			if (rc != ERR_OK)
				continue;
			if ((st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) ||
			    (list[i].which == Q_COMMIT &&	/* a ROLLBACK */
			     strcmp(PQcmdStatus(res), "COMMIT") != 0))
				rc = db_fail(g, list[i].what, res);
			else if (list[i].rows >= 0 &&
				 rows_changed(res) != (uint64_t)list[i].rows)
				rc = store_base_fail(&g->base, "%s: the ledger "
						     "is damaged (%llu rows, "
						     "not %lld)", list[i].what,
						     (unsigned long long)rows_changed(res),
						     (long long)list[i].rows);
		}
		if (!got) {	/* the connection went */
			if (rc == ERR_OK)
				rc = db_fail(g, list[i].what, NULL);
			return rc;
		}
	}
	PGresult *res = PQgetResult(g->conn);
	bool synced = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
	PQclear(res);
	if (!synced && rc == ERR_OK)
		rc = db_fail(g, "cannot write the group", NULL);
	return rc;
}

/* Everything the group queued, in one pipeline: the streams' rows (so that
 * a stream wrongly taken as new fails before any event goes), the sheet's,
 * the events, and, when
 * pg_commit asks, the NOTIFY and the COMMIT. One round trip. */
static error_code pg_flush(store *s, const store_sql_stream *const *streams,
			   size_t n, const store_sql_sheet_flush *sheet)
{
	pg_store *g = (pg_store *)s;
	if (g->broken)
		return still_broken(g);
	buf *c = g->cols;
	for (size_t i = 0; i < sizeof g->cols / sizeof *g->cols; i++)
		c[i].len = 0;
	int64_t added = 0;
	for (size_t i = 0; i < n; i++) {
		buf *to = streams[i]->stored ? c + 3 : c;
		added += !streams[i]->stored;
		put_text(&to[0], streams[i]->name, streams[i]->len);
		put_num(&to[1], (int64_t)streams[i]->version);
		put_num(&to[2], streams[i]->balance);
	}
	if (sheet)
		for (size_t i = 0; i < sheet->n; i++) {
			put_text(&c[6], sheet->rows[i].account,
				 strlen(sheet->rows[i].account));
			put_num(&c[7], sheet->rows[i].balance);
		}
	char cp[24];
	sent list[9];
	int k = 0;
	bool ok = PQenterPipelineMode(g->conn) == 1;
	if (ok && added > 0) {
		const char *params[3] = { array_of(&c[0]), array_of(&c[1]),
					  array_of(&c[2]) };
		ok = send(g, list, &k, Q_STREAMS_NEW, "cannot write the new "
			  "streams", added, params);
	}
	if (ok && (int64_t)n > added) {
		const char *params[3] = { array_of(&c[3]), array_of(&c[4]),
					  array_of(&c[5]) };
		ok = send(g, list, &k, Q_STREAMS_SET, "cannot write the streams' "
			  "versions", (int64_t)n - added, params);
	}
	if (ok && sheet && sheet->replace)
		ok = send(g, list, &k, Q_BALANCES_CLEAR, "cannot empty the "
			  "balance sheet", -1, NULL);
	if (ok && sheet) {
		const char *params[1] = { num(cp, (int64_t)sheet->checkpoint) };
		ok = send(g, list, &k, Q_CHECKPOINT_SET, "cannot move the "
			  "checkpoint", 1, params);
	}
	if (ok && sheet && sheet->n > 0) {
		const char *params[2] = { array_of(&c[6]), array_of(&c[7]) };
		ok = send(g, list, &k, Q_BALANCES_PUT, "cannot write the balance "
			  "sheet", (int64_t)sheet->n, params);
	}
	if (ok && g->q.n > 0) {
		const char *params[6];
		for (int i = 0; i < 6; i++)
			params[i] = array_of(&g->q.col[i]);
		ok = send(g, list, &k, Q_EVENTS_PUT, "cannot write the events",
			  (int64_t)g->q.n, params);
	}
	if (ok && g->committing) {
		ok = send(g, list, &k, Q_NOTIFY, "cannot commit", -1, NULL) &&
		     send(g, list, &k, Q_COMMIT, "cannot commit", -1, NULL);
	}
	error_code rc = ERR_OK;
	if (!ok || PQpipelineSync(g->conn) != 1)
		rc = db_fail(g, "cannot write the group", NULL);
	else
		rc = pipeline_results(g, list, k);
	if (PQpipelineStatus(g->conn) != PQ_PIPELINE_OFF &&
	    PQexitPipelineMode(g->conn) != 1 && rc == ERR_OK)
		rc = db_fail(g, "cannot write the group", NULL);
	queue_clear(&g->q);	/* sent, or the group is lost */
	if (rc == ERR_OK && g->committing)
		g->committed = true;
	if (rc != ERR_OK) {
		g->broken = true;
		memcpy(g->broken_why, g->base.errmsg, sizeof g->broken_why);
	}
	return rc;
}

/* Sends what the group queued before a read in it, so the read sees it. */
static error_code flushed(pg_store *g)
{
	if (!g->base.in_group)
		return ERR_OK;
	if (g->broken)
		return still_broken(g);
	return store_sql_flush(&g->base, &pg_prims, g->writer);
}

static error_code pg_append(store *s, const store_new_event *evs, size_t n,
			    int64_t time_ms, uint64_t *last_position)
{
	pg_store *g = (pg_store *)s;
	error_code rc = store_sql_append(s, &pg_prims, g->writer, evs, n,
					 time_ms, last_position);
	if (rc == ERR_OK && g->q.n >= BATCH_MAX)	/* a full batch goes now */
		rc = store_sql_flush(s, &pg_prims, g->writer);
	return rc;
}

static error_code pg_stream_state(store *s, const char *stream, size_t len,
				  uint32_t *key, uint64_t *version,
				  int64_t *balance)
{
	return store_sql_stream_state(s, &pg_prims, ((pg_store *)s)->writer,
				      stream, len, key, version, balance);
}

/* Calls fn per row of res laid out as EVENT_COLUMNS (+ stream). */
static error_code each_event(pg_store *g, PGresult *res, const char *stream,
			     store_event_fn fn, void *ctx)
{
	int rows = PQntuples(res);
	for (int r = 0; r < rows; r++) {
		const char *type = PQgetvalue(res, r, 2);
		store_event ev = {
			.position = (uint64_t)int_at(res, r, 0),
			.version = (uint64_t)int_at(res, r, 1),
			.stream = stream ? stream : PQgetvalue(res, r, 5),
			.amount = int_at(res, r, 3),
			.time_ms = int_at(res, r, 4),
		};
		if (strcmp(type, "AccountCredited") == 0)
			ev.type = EVENT_CREDITED;
		else if (strcmp(type, "AccountDebited") == 0)
			ev.type = EVENT_DEBITED;
		else {
			PQclear(res);
			return store_base_fail(&g->base, "event %llu has an unknown type",
					       (unsigned long long)ev.position);
		}
		if (fn(ctx, &ev))
			break;
	}
	PQclear(res);
	return ERR_OK;
}

static error_code pg_read_stream(store *s, const char *stream,
				 uint64_t after_version, store_event_fn fn,
				 void *ctx)
{
	pg_store *g = (pg_store *)s;
	uint64_t known;
	bool unflushed = true;
	/* in a group the table knows where a stream it holds ends: a handler
	 * asking for what follows its kept state asks for nothing, and one
	 * whose stream has nothing queued needs no flush first */
	if (store_sql_known(g->writer, stream, strlen(stream), &known,
			    &unflushed) && after_version >= known)
		return ERR_OK;
	error_code rc = unflushed ? flushed(g) : ERR_OK;
	if (rc != ERR_OK)
		return rc;
	char v[24];
	const char *params[2] = { stream, num(v, (int64_t)after_version) };
	PGresult *res = exec(g, Q_READ_STREAM, params, "cannot read a stream");
	return res ? each_event(g, res, stream, fn, ctx) : failed(g);
}

static error_code pg_read_all(store *s, uint64_t after, size_t limit,
			      store_event_fn fn, void *ctx)
{
	pg_store *g = (pg_store *)s;
	queue *q = &g->q;
	/* a refresh in a group, after the last one in it: what it asks for
	 * is all in the queue (positions there run on without gaps) */
	if (g->base.in_group && !g->broken && q->n > 0 &&
	    after + 1 >= q->ev[0].position) {
		size_t i = (size_t)(after + 1 - q->ev[0].position);
		for (size_t k = 0; i < q->n && k < limit; i++, k++)
			if (fn(ctx, &q->ev[i]))
				break;
		return ERR_OK;
	}
	error_code rc = flushed(g);
	if (rc != ERR_OK)
		return rc;
	char a[24], l[24];
	const char *params[2] = { num(a, (int64_t)after), num(l, (int64_t)limit) };
	PGresult *res = exec(g, Q_READ_ALL, params, "cannot read events");
	return res ? each_event(g, res, NULL, fn, ctx) : failed(g);
}

/* One integer from a statement without parameters. */
static error_code one_int(pg_store *g, int which, int64_t *v, const char *what)
{
	PGresult *res = exec(g, which, NULL, what);
	if (res == NULL)
		return failed(g);
	*v = PQntuples(res) > 0 ? int_at(res, 0, 0) : 0;
	PQclear(res);
	return ERR_OK;
}

/* The last position written (store_sql's head primitive). */
static error_code pg_file_head(store *s, uint64_t *head)
{
	int64_t v = 0;
	error_code rc = one_int((pg_store *)s, Q_HEAD, &v, "cannot read the head");
	*head = (uint64_t)v;
	return rc;
}

static error_code pg_head(store *s, uint64_t *head)
{
	return store_sql_head(s, &pg_prims, ((pg_store *)s)->writer, head);
}

static error_code pg_stream_count(store *s, uint64_t *count)
{
	int64_t v = 0;
	error_code rc = flushed((pg_store *)s);
	if (rc == ERR_OK)
		rc = one_int((pg_store *)s, Q_STREAM_COUNT, &v,
			     "cannot count the streams");
	*count = (uint64_t)v;
	return rc;
}

static error_code pg_streams(store *s, const char *prefix, store_stream_fn fn,
			     void *ctx)
{
	pg_store *g = (pg_store *)s;
	error_code rc = flushed(g);
	if (rc != ERR_OK)
		return rc;
	const char *params[1] = { prefix };
	PGresult *res = exec(g, Q_STREAMS, params, "cannot list the streams");
	if (res == NULL)
		return failed(g);
	for (int r = 0; r < PQntuples(res); r++)
		if (fn(ctx, PQgetvalue(res, r, 0)))
			break;
	PQclear(res);
	return ERR_OK;
}

/* ---- the balance sheet, shared by every shell ---- */

/* The checkpoint row (store_sql's checkpoint primitive). */
static error_code pg_checkpoint_row(store *s, uint64_t *checkpoint)
{
	int64_t v = 0;
	error_code rc = one_int((pg_store *)s, Q_CHECKPOINT, &v,
				"cannot read the checkpoint");
	*checkpoint = (uint64_t)v;
	return rc;
}

/* The primitives of store_sql's sheet load and save. */

/* The row lock this UPDATE takes makes a second shell's refresh wait for
 * this one to commit, then find the checkpoint moved. */
static error_code pg_checkpoint_move(store *s, uint64_t from, uint64_t to,
				     bool *moved)
{
	pg_store *g = (pg_store *)s;
	char f[24], t[24];
	const char *params[2] = { num(f, (int64_t)from), num(t, (int64_t)to) };
	PGresult *res = exec(g, Q_CHECKPOINT_MOVE, params, "cannot move the checkpoint");
	if (res == NULL)
		return ERR_STORAGE;
	*moved = rows_changed(res) == 1;
	PQclear(res);
	return ERR_OK;
}

static error_code pg_balances(store *s, sheet_store_row_fn fn, void *ctx)
{
	pg_store *g = (pg_store *)s;
	PGresult *res = exec(g, Q_BALANCES, NULL, "cannot read the balance sheet");
	if (res == NULL)
		return failed(g);
	for (int r = 0; r < PQntuples(res); r++)
		if (fn(ctx, PQgetvalue(res, r, 0), int_at(res, r, 1)))
			break;
	PQclear(res);
	return ERR_OK;
}

static error_code pg_snapshot_begin(store *s)
{
	if (!command((pg_store *)s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		     "cannot read the balance sheet"))
		return ERR_STORAGE;
	return ERR_OK;
}

static error_code pg_snapshot_end(store *s, error_code rc)
{
	if (!command((pg_store *)s, rc == ERR_OK ? "COMMIT" : "ROLLBACK",
		     "cannot read the balance sheet"))
		return ERR_STORAGE;
	return rc;
}

static error_code pg_sheet_checkpoint(store *s, uint64_t *checkpoint)
{
	return store_sql_sheet_checkpoint(s, &pg_prims, ((pg_store *)s)->writer,
					  checkpoint);
}

static error_code pg_sheet_load(store *s, uint64_t *checkpoint,
				sheet_store_row_fn fn, void *ctx)
{
	return store_sql_sheet_load(s, &pg_prims, ((pg_store *)s)->writer,
				    checkpoint, fn, ctx);
}

static error_code pg_sheet_save(store *s, uint64_t from, uint64_t to,
				const sheet_store_row *rows, size_t n, bool replace)
{
	return store_sql_sheet_save(s, &pg_prims, ((pg_store *)s)->writer, from,
				    to, rows, n, replace);
}

/* ---- the connection ---- */

/* Sets up a new session (see session_setup); with prepare, the
 * statements too (not before the tables exist). errmsg says why not. */
static bool setup(pg_store *g, bool prepare)
{
	g->connecting = true;
	bool ok = command(g, session_setup, "cannot set up the connection");
	for (int i = 0; ok && prepare && i < Q_COUNT; i++) {
		PGresult *res = PQprepare(g->conn, queries[i].name, queries[i].sql,
					  queries[i].params, NULL);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			db_fail(g, "cannot prepare a statement", res);
		PQclear(res);
	}
	g->connecting = false;
	return ok;
}

/* Makes a lost connection again, with its session set up as at open.
 * false: errmsg says why, starting with what. */
static bool reconnect(pg_store *g, const char *what)
{
	g->busy = false;
	g->resetting = PGRES_POLLING_FAILED;
	PQreset(g->conn);
	if (PQstatus(g->conn) != CONNECTION_OK) {
		char msg[200];
		clean(g, PQerrorMessage(g->conn), msg, sizeof msg);
		store_base_fail(&g->base, "%s: the connection to the server was lost "
				"and cannot be made again: %s", what, msg);
		return false;
	}
	if (!setup(g, true)) {
		char why[sizeof g->base.errmsg];
		memcpy(why, g->base.errmsg, sizeof why);
		store_base_fail(&g->base, "%s: the connection to the server was lost; "
				"made again, %s", what, why);
		return false;
	}
	return true;
}

/* Cheap: no round trip, never blocks on the network. Reads what the
 * server sent (NOTIFYs of groups that committed, this shell's own
 * included). A connection found lost at an idle prompt is made again in
 * the background (libpq's non-blocking reset, a step per call), so the lag
 * stays live across a server restart; a command that comes first makes it
 * again itself. */
static error_code pg_poll(store *s, bool *changed)
{
	pg_store *g = (pg_store *)s;
	*changed = false;
	if (g->resetting != PGRES_POLLING_FAILED) {
		struct pollfd fd = {
			.fd = PQsocket(g->conn),
			.events = g->resetting == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		};
		if (fd.fd >= 0 && poll(&fd, 1, 0) == 0)
			return ERR_OK;	/* not yet */
		g->resetting = PQresetPoll(g->conn);
		if (g->resetting == PGRES_POLLING_OK) {
			g->resetting = PGRES_POLLING_FAILED;
			char keep[sizeof s->errmsg];	/* not a command's failure */
			memcpy(keep, s->errmsg, sizeof keep);
			*changed = setup(g, true);	/* it missed NOTIFYs */
			memcpy(s->errmsg, keep, sizeof keep);
		}
		return ERR_OK;
	}
	if (is_lost(g)) {
		if (s->in_group || s->lost || ms_since(&g->tried) < RECONNECT_EVERY_MS)
			return ERR_OK;	/* the next command says what happened */
		clock_gettime(CLOCK_MONOTONIC, &g->tried);
		if (PQresetStart(g->conn))
			g->resetting = PGRES_POLLING_WRITING;
		return ERR_OK;
	}
	if (!PQconsumeInput(g->conn)) {	/* lost just now: others may write */
		*changed = true;
		return ERR_OK;
	}
	for (PGnotify *n; (n = PQnotifies(g->conn)) != NULL; PQfreemem(n))
		*changed = true;
	return ERR_OK;
}

/* ---- opening ---- */

static void pg_free(store *s)
{
	pg_store *g = (pg_store *)s;
	PQfinish(g->watch);
	PQfinish(g->conn);	/* an open group ends with the connection:
				   the shell commits what it showed */
	store_sql_writer_free(g->writer);
	queue_free(&g->q);
	for (size_t i = 0; i < sizeof g->cols / sizeof *g->cols; i++)
		buf_free(&g->cols[i]);
	free(g->uri);
	free(g);
}

static const sheet_store_ops pg_sheet_ops = {
	.checkpoint = pg_sheet_checkpoint,
	.load = pg_sheet_load,
	.save = pg_sheet_save,
};

static const store_ops pg_ops = {
	.kind = "postgresql",
	.free = pg_free,
	.append = pg_append,
	.read_stream = pg_read_stream,
	.read_all = pg_read_all,
	.stream_state = pg_stream_state,
	.head = pg_head,
	.stream_count = pg_stream_count,
	.streams = pg_streams,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.poll = pg_poll,
	.sheet = &pg_sheet_ops,
};

/* Notices (e.g. from the server's own housekeeping) are not for the user's
 * terminal. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Gives back check_schema's session lock (a connection that is gone
 * has given it back already). */
static void unlock(pg_store *g)
{
	PQclear(PQexec(g->conn, "SELECT pg_advisory_unlock(" WRITE_LOCK ")"));
}

/* A primitive's failure, as the store's errmsg says it, into why. */
static error_code schema_failed(pg_store *g, char *why, size_t why_len)
{
	snprintf(why, why_len, "%s", g->base.errmsg);
	return ERR_STORAGE;
}

/* The primitives of store_sql's schema decision. The tables are made
 * under the write lock, so two shells starting together make them once; a
 * ledger that exists is checked without it, so opening never waits for
 * another shell's group. The lock is taken for the session, before the
 * transaction: one begun before the tables were made would still see them
 * missing (its catalog cache), and make them twice. */

/* Reads the schema version in the transaction schema_read began. */
static error_code read_version(pg_store *g, store_sql_found *found,
			       int64_t *version, char *why, size_t why_len)
{
	PGresult *res = PQexec(g->conn, "SELECT value FROM simplecqrs_meta "
				       "WHERE key = 'schema_version'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(g, "cannot read the schema version", res);
		PQclear(res);
		return schema_failed(g, why, why_len);
	}
	/* only a plain positive number is a version */
	char text[32] = "";
	if (PQntuples(res) == 1)
		snprintf(text, sizeof text, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	char *end;
	*version = strtol(text, &end, 10);
	*found = STORE_SQL_FOUND_OURS;
	if (text[0] < '1' || text[0] > '9' || *end != '\0' || strlen(text) > 9) {
		snprintf(why, why_len, "a damaged ledger: its schema_version "
			 "is '%.20s', not a version", text);
		*found = STORE_SQL_FOUND_OTHER;
	}
	return ERR_OK;
}

/* Begins a transaction and looks at the tables; it stays open until
 * schema_lock or schema_end. */
static error_code pg_schema_read(store *s, store_sql_found *found,
				 int64_t *version, char *why, size_t why_len)
{
	pg_store *g = (pg_store *)s;
	if (!command(g, "BEGIN ISOLATION LEVEL READ COMMITTED",
		     "cannot start a transaction"))
		return schema_failed(g, why, why_len);
	PGresult *res = PQexec(g->conn,
		"SELECT to_regclass('simplecqrs_meta') IS NOT NULL, "
		"to_regclass('events') IS NOT NULL OR to_regclass('streams') IS NOT NULL "
		"OR to_regclass('balances') IS NOT NULL OR to_regclass('checkpoint') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(g, "cannot read the schema", res);
		PQclear(res);
		return schema_failed(g, why, why_len);
	}
	bool ours = PQgetvalue(res, 0, 0)[0] == 't';
	bool taken = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (ours)
		return read_version(g, found, version, why, why_len);
	*found = STORE_SQL_FOUND_EMPTY;
	if (taken) {
		snprintf(why, why_len, "the database has tables named like ours "
			 "(events, streams, balances, checkpoint) that simplecqrs did not make");
		*found = STORE_SQL_FOUND_OTHER;
	}
	return ERR_OK;
}

static error_code pg_schema_lock(store *s, char *why, size_t why_len)
{
	pg_store *g = (pg_store *)s;
	abandon(g);	/* schema_read's transaction: look again under the lock */
	if (take_lock(g, "SELECT pg_advisory_lock(" WRITE_LOCK ")", false) != ERR_OK)
		return schema_failed(g, why, why_len);
	return ERR_OK;
}

static error_code pg_schema_create(store *s, char *why, size_t why_len)
{
	pg_store *g = (pg_store *)s;
	char stamp[120];
	snprintf(stamp, sizeof stamp,
		 "INSERT INTO simplecqrs_meta VALUES ('schema_version', '%d')",
		 SCHEMA_VERSION);
	if (!command(g, schema, "cannot make the tables") ||
	    !command(g, stamp, "cannot make the tables"))
		return schema_failed(g, why, why_len);
	return ERR_OK;
}

static error_code pg_schema_upgrade(store *s, int64_t from, char *why,
				    size_t why_len)
{
	pg_store *g = (pg_store *)s;
	if (from != 1) {
		snprintf(why, why_len, "no upgrade from schema version %lld",
			 (long long)from);
		return ERR_STORAGE;
	}
	if (command(g, upgrade_1_2, "cannot upgrade the ledger's tables"))
		return ERR_OK;	/* schema_end commits it */
	schema_failed(g, why, why_len);
	if (strstr(why, "check constraint") == NULL)
		return ERR_STORAGE;
	/* the kept balance's check: which account (a new transaction, as the
	 * failed one answers nothing more; schema_end drops it) */
	abandon(g);
	PQclear(PQexec(g->conn, "BEGIN"));
	PGresult *res = PQexec(g->conn,
		"SELECT stream, sum(CASE type WHEN 'AccountCredited' THEN amount "
		"ELSE -amount END) AS b FROM events GROUP BY stream "
		"HAVING sum(CASE type WHEN 'AccountCredited' THEN amount "
		"ELSE -amount END) < 0 ORDER BY stream LIMIT 1");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(why, why_len, "account %.64s's events add up to a "
			 "balance of %s, below 0 (a damaged ledger)",
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	PQclear(res);
	return ERR_STORAGE;
}

/* Commits what was read, made or upgraded, or drops it; and lets the lock
 * go. */
static error_code pg_schema_end(store *s, bool locked, store_sql_outcome how,
				char *why, size_t why_len)
{
	pg_store *g = (pg_store *)s;
	error_code rc = ERR_OK;
	bool keep = how == STORE_SQL_USED || how == STORE_SQL_CREATED ||
		    how == STORE_SQL_UPGRADED;
	if (keep && !command(g, "COMMIT", "cannot commit the tables"))
		rc = schema_failed(g, why, why_len);
	if (rc != ERR_OK || !keep)
		abandon(g);
	if (locked)
		unlock(g);
	return rc;
}

static const store_sql_prims pg_prims = {
	.head = pg_file_head,
	.stream_load = pg_stream_load,
	.stream_add = NULL,	/* streams go by name: flush makes new rows */
	.streams_all = pg_streams_all,
	.event_add = pg_event_add,
	.events_after = pg_events_after,
	.flush = pg_flush,
	.checkpoint = pg_checkpoint_row,
	.checkpoint_move = pg_checkpoint_move,
	.balances = pg_balances,
	.snapshot_begin = pg_snapshot_begin,
	.snapshot_end = pg_snapshot_end,
	.catchup_max = 65536,	/* one query, against a round trip a stream */
	.schema_version = SCHEMA_VERSION,
	.schema_read = pg_schema_read,
	.schema_lock = pg_schema_lock,
	.schema_create = pg_schema_create,
	.schema_upgrade = pg_schema_upgrade,
	.schema_end = pg_schema_end,
};

/* Makes the tables on first use, or checks they are ours and not newer. */
static bool check_schema(pg_store *g, char *why, size_t why_len)
{
	return store_sql_schema(&g->base, &pg_prims, &g->base.created, why,
				why_len);
}

store *store_pg_open(const char *uri, char *why, size_t why_len)
{
	pg_store *g = xcalloc(1, sizeof *g);
	g->base.ops = &pg_ops;
	g->uri = xstrdup(uri);
	g->writer = store_sql_writer_new();
	g->resetting = PGRES_POLLING_FAILED;
	why[0] = '\0';
	/* Tests only: a writer that holds its transaction (and so its
	 * positions) open while others try to write and refresh. */
	const char *delay = getenv("SIMPLECQRS_TEST_COMMIT_DELAY_MS");
	g->commit_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
	g->conn = PQconnectdb(uri);
	if (g->conn == NULL) {
		snprintf(why, why_len, "out of memory");
		store_sql_writer_free(g->writer);
		free(g->uri);
		free(g);
		return NULL;
	}
	if (PQstatus(g->conn) != CONNECTION_OK) {
		clean(g, PQerrorMessage(g->conn), why, why_len);
		goto fail;
	}
	PQsetNoticeProcessor(g->conn, quiet, NULL);
	bool ok = setup(g, false);
	g->connecting = true;	/* nothing to make again yet */
	if (!ok || !check_schema(g, why, why_len))
		goto fail_why;
	if (!setup(g, true))
		goto fail_why;
	char safe[1024];
	secret_safe_uri(uri, safe, sizeof safe);
	g->base.location = xstrdup(safe);
	return &g->base;
fail_why:
	if (why[0] == '\0')
		snprintf(why, why_len, "%s", g->base.errmsg);
fail:
	PQfinish(g->conn);
	store_sql_writer_free(g->writer);
	free(g->uri);
	free(g);
	return NULL;
}
