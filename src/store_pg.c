/* store_pg.c — the postgresql:// store: one ledger for shells on many machines.
 *
 * Tables (see README, "The PostgreSQL store"): events, one row per event;
 * streams, each account's version, the expected-version check of an append;
 * balances and checkpoint, the shared balance sheet; simplecqrs_meta, the
 * schema version. Every statement is prepared once and takes parameters.
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
 * it, and store_commit ends it. The shell commits before showing a result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"

#define SCHEMA_VERSION 1	/* simplecqrs_meta's schema_version this build writes */
#define WRITE_LOCK "1396920658"	/* the advisory lock key: "SCQR" */

static const char schema[] =
	"CREATE TABLE simplecqrs_meta (\n"
	"  key text PRIMARY KEY,\n"
	"  value text NOT NULL\n"
	");\n"
	"CREATE TABLE streams (\n"
	"  name text PRIMARY KEY,\n"
	"  version bigint NOT NULL CHECK (version > 0)\n"
	");\n"
	"CREATE TABLE events (\n"
	"  position bigint PRIMARY KEY CHECK (position > 0),\n"
	"  stream text NOT NULL REFERENCES streams (name),\n"
	"  version bigint NOT NULL CHECK (version > 0),\n"
	"  type text NOT NULL CHECK (type IN ('AccountCredited', 'AccountDebited')),\n"
	"  amount bigint NOT NULL CHECK (amount > 0),\n"
	"  time timestamptz NOT NULL,\n"
	"  UNIQUE (stream, version)\n"
	");\n"
	"CREATE TABLE balances (\n"
	"  account text PRIMARY KEY,\n"
	"  balance bigint NOT NULL CHECK (balance >= 0)\n"
	");\n"
	"CREATE TABLE checkpoint (\n"
	"  id int PRIMARY KEY CHECK (id = 1),\n"
	"  position bigint NOT NULL\n"
	");\n"
	"INSERT INTO checkpoint VALUES (1, 0);\n";

typedef struct query {
	const char *name;
	const char *sql;
	int params;
} query;

enum {
	Q_HEAD, Q_STREAM_VERSION, Q_STREAM_NEW, Q_STREAM_BUMP, Q_STREAM_UNDO,
	Q_STREAM_DROP, Q_EVENT_ADD, Q_READ_STREAM, Q_READ_ALL, Q_STREAM_COUNT,
	Q_STREAMS, Q_CHECKPOINT, Q_CHECKPOINT_MOVE, Q_BALANCE_PUT,
	Q_BALANCES_CLEAR, Q_BALANCES,
	Q_COUNT
};

#define EVENT_COLUMNS "position, version, type, amount, " \
	"(extract(epoch FROM time) * 1000)::bigint"

static const query queries[Q_COUNT] = {
	[Q_HEAD] = { "head", "SELECT coalesce(max(position), 0) FROM events", 0 },
	[Q_STREAM_VERSION] = { "stream_version",
		"SELECT version FROM streams WHERE name = $1", 1 },
	[Q_STREAM_NEW] = { "stream_new",
		"INSERT INTO streams (name, version) VALUES ($1, 1) "
		"ON CONFLICT DO NOTHING", 1 },
	[Q_STREAM_BUMP] = { "stream_bump",
		"UPDATE streams SET version = version + 1 "
		"WHERE name = $1 AND version = $2", 2 },
	[Q_STREAM_UNDO] = { "stream_undo",
		"UPDATE streams SET version = version - 1 WHERE name = $1", 1 },
	[Q_STREAM_DROP] = { "stream_drop", "DELETE FROM streams WHERE name = $1", 1 },
	[Q_EVENT_ADD] = { "event_add",
		"INSERT INTO events (position, stream, version, type, amount, time) "
		"VALUES ($1, $2, $3, $4, $5, "
		"timestamptz 'epoch' + $6 * interval '1 millisecond')", 6 },
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
	[Q_BALANCE_PUT] = { "balance_put",
		"INSERT INTO balances (account, balance) VALUES ($1, $2) "
		"ON CONFLICT (account) DO UPDATE SET balance = excluded.balance", 2 },
	[Q_BALANCES_CLEAR] = { "balances_clear", "DELETE FROM balances", 0 },
	[Q_BALANCES] = { "balances", "SELECT account, balance FROM balances", 0 },
};

typedef struct pg_store {
	struct store base;
	PGconn *conn;
	uint64_t next;		/* in a group: the next position to hand out */
	long commit_delay_ms;	/* test hook: hold each group open this long */
} pg_store;

/* ---- talking to the server ---- */

/* libpq's message on one line, without its trailing newline. */
static void one_line(const char *msg, char *out, size_t out_len)
{
	size_t n = 0;
	for (const char *p = msg; *p && n + 1 < out_len; p++) {
		char c = *p == '\n' || *p == '\t' ? ' ' : *p;
		if (c == ' ' && (n == 0 || out[n - 1] == ' '))
			continue;
		out[n++] = c;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

static error_code db_fail(pg_store *g, const char *what, const PGresult *res)
{
	char msg[200];
	one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(g->conn), msg,
		 sizeof msg);
	if (msg[0] == '\0')
		one_line(PQerrorMessage(g->conn), msg, sizeof msg);
	return store_fail(&g->base, "%s: %s", what, msg[0] ? msg : "the server failed");
}

/* Runs a prepared statement; NULL (and the store's errmsg set) unless the
 * server answered as expected. */
static PGresult *exec(pg_store *g, int which, const char *const *params,
		      const char *what)
{
	PGresult *res = PQexecPrepared(g->conn, queries[which].name,
				       queries[which].params, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	db_fail(g, what, res);
	PQclear(res);
	return NULL;
}

/* Runs plain SQL that returns no rows; false on failure. */
static bool command(pg_store *g, const char *sql, const char *what)
{
	PGresult *res = PQexec(g->conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
		  PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		db_fail(g, what, res);
	PQclear(res);
	return ok;
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
static const char *num(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

/* ---- groups: store.c keeps the state, these are the transactions ---- */

static error_code pg_begin(store *s)
{
	pg_store *g = (pg_store *)s;
	if (!command(g, "BEGIN", "cannot start a transaction"))
		return ERR_STORAGE;
	PGresult *res = NULL;
	if (!command(g, "SELECT pg_advisory_xact_lock(" WRITE_LOCK ")",
		     "cannot take the write lock") ||
	    (res = exec(g, Q_HEAD, NULL, "cannot read the head")) == NULL) {
		PQclear(PQexec(g->conn, "ROLLBACK"));
		return ERR_STORAGE;
	}
	g->next = (uint64_t)int_at(res, 0, 0) + 1;
	PQclear(res);
	return ERR_OK;
}

static error_code pg_commit(store *s)
{
	pg_store *g = (pg_store *)s;
	if (g->commit_delay_ms > 0) {	/* the gap test's slow writer */
		struct timespec ts = { g->commit_delay_ms / 1000,
				       g->commit_delay_ms % 1000 * 1000000L };
		nanosleep(&ts, NULL);
	}
	PGresult *res = PQexec(g->conn, "COMMIT");
	/* a transaction that failed answers COMMIT with ROLLBACK */
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
		  strcmp(PQcmdStatus(res), "COMMIT") == 0;
	if (!ok)
		db_fail(g, "cannot commit", res);
	PQclear(res);
	return ok ? ERR_OK : ERR_STORAGE;
}

static void pg_rollback(store *s)
{
	PQclear(PQexec(((pg_store *)s)->conn, "ROLLBACK"));
}

/* ---- events ---- */

/* Moves one stream from ev->expected_version to the next: ERR_CONFLICT, with
 * nothing written, if it is not there. */
static error_code claim_version(pg_store *g, const store_new_event *ev)
{
	char v[24];
	const char *params[2] = { ev->stream, num(v, (int64_t)ev->expected_version) };
	PGresult *res = exec(g, ev->expected_version == 0 ? Q_STREAM_NEW : Q_STREAM_BUMP,
			     params, "cannot write a stream's version");
	if (res == NULL)
		return ERR_STORAGE;
	error_code rc = rows_changed(res) == 1 ? ERR_OK : ERR_CONFLICT;
	PQclear(res);
	return rc;
}

/* Puts back what claim_version did for evs[0..n). */
static error_code unclaim(pg_store *g, const store_new_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *params[1] = { evs[i].stream };
		PGresult *res = exec(g, evs[i].expected_version == 0 ? Q_STREAM_DROP
								      : Q_STREAM_UNDO,
				     params, "cannot undo a stream's version");
		if (res == NULL)
			return ERR_STORAGE;
		PQclear(res);
	}
	return ERR_OK;
}

static error_code pg_append(store *s, const store_new_event *evs, size_t n,
			    int64_t time_ms, uint64_t *last_position)
{
	pg_store *g = (pg_store *)s;
	error_code rc = store_group_begin(s);
	if (rc != ERR_OK)
		return rc;
	/* Under the write lock nothing else moves: a conflict can put back
	 * what this append claimed and leave the group as it was. */
	for (size_t i = 0; i < n; i++) {
		rc = claim_version(g, &evs[i]);
		if (rc == ERR_CONFLICT)	/* put back, or give up the group */
			rc = unclaim(g, evs, i) == ERR_OK ? ERR_CONFLICT : ERR_STORAGE;
		if (rc == ERR_CONFLICT)
			return rc;
		if (rc != ERR_OK)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		char pos[24], ver[24], amount[24], time[24];
		const char *params[6] = {
			num(pos, (int64_t)(g->next + i)), evs[i].stream,
			num(ver, (int64_t)evs[i].expected_version + 1),
			event_type_name(evs[i].type), num(amount, evs[i].amount),
			num(time, time_ms),
		};
		PGresult *res = exec(g, Q_EVENT_ADD, params, "cannot write an event");
		if (res == NULL) {
			rc = ERR_STORAGE;
			goto fail;
		}
		PQclear(res);
	}
	g->next += n;
	*last_position = g->next - 1;
	return ERR_OK;
fail:
	store_group_abandon(s);	/* half an append is never kept */
	return rc;
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
			return store_fail(&g->base, "event %llu has an unknown type",
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
	char v[24];
	const char *params[2] = { stream, num(v, (int64_t)after_version) };
	PGresult *res = exec(g, Q_READ_STREAM, params, "cannot read a stream");
	return res ? each_event(g, res, stream, fn, ctx) : ERR_STORAGE;
}

static error_code pg_read_all(store *s, uint64_t after, size_t limit,
			      store_event_fn fn, void *ctx)
{
	pg_store *g = (pg_store *)s;
	char a[24], l[24];
	const char *params[2] = { num(a, (int64_t)after), num(l, (int64_t)limit) };
	PGresult *res = exec(g, Q_READ_ALL, params, "cannot read events");
	return res ? each_event(g, res, NULL, fn, ctx) : ERR_STORAGE;
}

/* One integer from a statement without parameters. */
static error_code one_int(pg_store *g, int which, int64_t *v, const char *what)
{
	PGresult *res = exec(g, which, NULL, what);
	if (res == NULL)
		return ERR_STORAGE;
	*v = PQntuples(res) > 0 ? int_at(res, 0, 0) : 0;
	PQclear(res);
	return ERR_OK;
}

static error_code pg_head(store *s, uint64_t *head)
{
	int64_t v = 0;
	error_code rc = one_int((pg_store *)s, Q_HEAD, &v, "cannot read the head");
	*head = (uint64_t)v;
	return rc;
}

static error_code pg_stream_count(store *s, uint64_t *count)
{
	int64_t v = 0;
	error_code rc = one_int((pg_store *)s, Q_STREAM_COUNT, &v,
				"cannot count the streams");
	*count = (uint64_t)v;
	return rc;
}

static error_code pg_streams(store *s, const char *prefix, store_stream_fn fn,
			     void *ctx)
{
	pg_store *g = (pg_store *)s;
	const char *params[1] = { prefix };
	PGresult *res = exec(g, Q_STREAMS, params, "cannot list the streams");
	if (res == NULL)
		return ERR_STORAGE;
	for (int r = 0; r < PQntuples(res); r++)
		if (fn(ctx, PQgetvalue(res, r, 0)))
			break;
	PQclear(res);
	return ERR_OK;
}

/* ---- the balance sheet, shared by every shell ---- */

static error_code pg_sheet_checkpoint(store *s, uint64_t *checkpoint)
{
	int64_t v = 0;
	error_code rc = one_int((pg_store *)s, Q_CHECKPOINT, &v,
				"cannot read the checkpoint");
	*checkpoint = (uint64_t)v;
	return rc;
}

static error_code pg_sheet_load(store *s, uint64_t *checkpoint,
				store_balance_fn fn, void *ctx)
{
	pg_store *g = (pg_store *)s;
	/* the checkpoint and the rows from one snapshot */
	bool snapshot = !s->in_group;
	if (snapshot && !command(g, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
				 "cannot read the balance sheet"))
		return ERR_STORAGE;
	error_code rc = pg_sheet_checkpoint(s, checkpoint);
	PGresult *res = NULL;
	if (rc == ERR_OK &&
	    (res = exec(g, Q_BALANCES, NULL, "cannot read the balance sheet")) == NULL)
		rc = ERR_STORAGE;
	if (snapshot && !command(g, rc == ERR_OK ? "COMMIT" : "ROLLBACK",
				 "cannot read the balance sheet"))
		rc = ERR_STORAGE;
	if (res != NULL && rc == ERR_OK) {
		for (int r = 0; r < PQntuples(res); r++)
			if (fn(ctx, PQgetvalue(res, r, 0), int_at(res, r, 1)))
				break;
	}
	PQclear(res);
	return rc;
}

static error_code pg_sheet_save(store *s, uint64_t from, uint64_t to,
				const store_balance *rows, size_t n, bool replace)
{
	pg_store *g = (pg_store *)s;
	error_code rc = store_group_begin(s);
	if (rc != ERR_OK)
		return rc;
	/* The row lock this UPDATE takes makes a second shell's refresh wait
	 * for this one to commit, then find the checkpoint moved. */
	char f[24], t[24], b[24];
	const char *params[2] = { num(f, (int64_t)from), num(t, (int64_t)to) };
	PGresult *res = exec(g, Q_CHECKPOINT_MOVE, params, "cannot move the checkpoint");
	if (res == NULL)
		goto fail;
	bool moved = rows_changed(res) == 1;
	PQclear(res);
	if (!moved)
		return ERR_CONFLICT;
	if (replace) {
		if ((res = exec(g, Q_BALANCES_CLEAR, NULL,
				"cannot empty the balance sheet")) == NULL)
			goto fail;
		PQclear(res);
	}
	for (size_t i = 0; i < n; i++) {
		const char *row[2] = { rows[i].account, num(b, rows[i].balance) };
		if ((res = exec(g, Q_BALANCE_PUT, row,
				"cannot write the balance sheet")) == NULL)
			goto fail;
		PQclear(res);
	}
	return ERR_OK;
fail:
	store_group_abandon(s);
	return ERR_STORAGE;
}

/* ---- opening ---- */

static void pg_free(store *s)
{
	pg_store *g = (pg_store *)s;
	PQfinish(g->conn);	/* an open group ends with the connection:
				   the shell commits what it showed */
	free(g);
}

static const store_ops pg_ops = {
	.kind = "postgresql",
	.free = pg_free,
	.append = pg_append,
	.read_stream = pg_read_stream,
	.read_all = pg_read_all,
	.head = pg_head,
	.stream_count = pg_stream_count,
	.streams = pg_streams,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.sheet_checkpoint = pg_sheet_checkpoint,
	.sheet_load = pg_sheet_load,
	.sheet_save = pg_sheet_save,
};

/* Notices (e.g. from the server's own housekeeping) are not for the user's
 * terminal. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Makes the tables on first use, or checks they are ours and not newer;
 * under the write lock, so two shells starting together make them once. */
static bool check_schema(pg_store *g, char *why, size_t why_len)
{
	if (!command(g, "BEGIN", "cannot start a transaction") ||
	    !command(g, "SELECT pg_advisory_xact_lock(" WRITE_LOCK ")",
		     "cannot take the write lock"))
		goto failed;
	PGresult *res = PQexec(g->conn,
		"SELECT to_regclass('simplecqrs_meta') IS NOT NULL, "
		"to_regclass('events') IS NOT NULL OR to_regclass('streams') IS NOT NULL "
		"OR to_regclass('balances') IS NOT NULL OR to_regclass('checkpoint') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_fail(g, "cannot read the schema", res);
		PQclear(res);
		goto failed;
	}
	bool ours = PQgetvalue(res, 0, 0)[0] == 't';
	bool taken = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!ours && taken) {
		snprintf(why, why_len, "the database has tables named like ours "
			 "(events, streams, balances, checkpoint) that simplecqrs did not make");
		goto refused;
	}
	if (!ours) {
		char stamp[120];
		snprintf(stamp, sizeof stamp,
			 "INSERT INTO simplecqrs_meta VALUES ('schema_version', '%d')",
			 SCHEMA_VERSION);
		if (!command(g, schema, "cannot make the tables") ||
		    !command(g, stamp, "cannot make the tables"))
			goto failed;
	} else {
		res = PQexec(g->conn, "SELECT value FROM simplecqrs_meta "
				      "WHERE key = 'schema_version'");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			db_fail(g, "cannot read the schema version", res);
			PQclear(res);
			goto failed;
		}
		/* only a plain positive number is a version */
		char text[32] = "";
		if (PQntuples(res) == 1)
			snprintf(text, sizeof text, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		char *end;
		long version = strtol(text, &end, 10);
		if (text[0] < '1' || text[0] > '9' || *end != '\0' ||
		    strlen(text) > 9) {
			snprintf(why, why_len, "a damaged ledger: its schema_version "
				 "is '%.20s', not a version", text);
			goto refused;
		}
		if (version > SCHEMA_VERSION) {
			snprintf(why, why_len, "ledger schema version %ld is newer than "
				 "this simplecqrs knows (%d)", version, SCHEMA_VERSION);
			goto refused;
		}
	}
	if (!command(g, "COMMIT", "cannot commit the tables"))
		goto failed;
	return true;
failed:
	snprintf(why, why_len, "%s", g->base.errmsg);
refused:
	PQclear(PQexec(g->conn, "ROLLBACK"));
	return false;
}

store *store_pg_open(const char *uri, char *why, size_t why_len)
{
	pg_store *g = xcalloc(1, sizeof *g);
	g->base.ops = &pg_ops;
	why[0] = '\0';
	/* Tests only: a writer that holds its transaction (and so its
	 * positions) open while others try to write and refresh. */
	const char *delay = getenv("SIMPLECQRS_TEST_COMMIT_DELAY_MS");
	g->commit_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
	g->conn = PQconnectdb(uri);
	if (g->conn == NULL) {
		snprintf(why, why_len, "out of memory");
		free(g);
		return NULL;
	}
	if (PQstatus(g->conn) != CONNECTION_OK) {
		one_line(PQerrorMessage(g->conn), why, why_len);
		goto fail;
	}
	PQsetNoticeProcessor(g->conn, quiet, NULL);
	/* as long as SQLite's busy timeout: a shell that holds the write
	 * lock longer than this makes the others fail rather than hang */
	if (!command(g, "SET client_min_messages = warning", "cannot set up") ||
	    !command(g, "SET lock_timeout = '10s'", "cannot set up") ||
	    !check_schema(g, why, why_len))
		goto fail_why;
	for (int i = 0; i < Q_COUNT; i++) {
		PGresult *res = PQprepare(g->conn, queries[i].name, queries[i].sql,
					  queries[i].params, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			db_fail(g, "cannot prepare a statement", res);
		PQclear(res);
		if (!ok)
			goto fail_why;
	}
	return &g->base;
fail_why:
	if (why[0] == '\0')
		snprintf(why, why_len, "%s", g->base.errmsg);
fail:
	PQfinish(g->conn);
	free(g);
	return NULL;
}
