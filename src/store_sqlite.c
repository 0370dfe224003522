/* store_sqlite.c — the sqlite:PATH store: events and balance sheet in one file.
 *
 * Tables (see README, "The SQLite file"): streams, one row per account with
 * its number and version, the expected-version check of an append;
 * event_log, one compact row per event, its position the rowid, unique on
 * (stream, version); balances and checkpoint, the kept balance sheet. A view,
 * events, shows the log with account names, type names and ISO times, so
 * `sqlite3 PATH 'select * from events'` reads like `history`. The file is in
 * WAL mode with synchronous=FULL.
 *
 * Writes are gathered in a group: the first write after a commit opens a
 * BEGIN IMMEDIATE transaction, later ones join it, and store_commit ends it.
 * The shell commits before it shows any result, so a result is never seen
 * before its events are on disk, and a piped script pays one fsync per group
 * rather than per command. Holding the write lock for the group also means
 * that what the group read cannot change under it; another shell waits (the
 * busy timeout) until the group commits.
 *
 * Account names are numbered once, and the numbers never change or go, so
 * the store remembers them: an append names its streams by number, and
 * readers get the number as the event's stream_key. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"

#define APPLICATION_ID 0x53435152	/* "SCQR": this file is a simplecqrs ledger */
#define SCHEMA_VERSION 1		/* PRAGMA user_version this build writes */
#define BUSY_TIMEOUT_MS 10000		/* how long to wait for another writer */

static const char schema[] =
	"CREATE TABLE streams (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL UNIQUE,\n"
	"  version INTEGER NOT NULL CHECK (version > 0)\n"
	");\n"
	"CREATE TABLE event_log (\n"
	"  position INTEGER PRIMARY KEY,\n"
	"  stream INTEGER NOT NULL REFERENCES streams (id),\n"
	"  version INTEGER NOT NULL CHECK (version > 0),\n"
	"  type INTEGER NOT NULL CHECK (type IN (1, 2)),\n"
	"  amount INTEGER NOT NULL CHECK (amount > 0),\n"
	"  time INTEGER NOT NULL,\n"
	"  UNIQUE (stream, version)\n"
	");\n"
	"CREATE VIEW events AS\n"
	"  SELECT e.position, s.name AS stream, e.version,\n"
	"         CASE e.type WHEN 1 THEN 'AccountCredited' ELSE 'AccountDebited' END AS type,\n"
	"         e.amount,\n"
	"         strftime('%Y-%m-%dT%H:%M:%fZ', e.time / 1000.0, 'unixepoch') AS time\n"
	"  FROM event_log e JOIN streams s ON s.id = e.stream;\n"
	"CREATE TABLE balances (\n"
	"  account TEXT PRIMARY KEY,\n"
	"  balance INTEGER NOT NULL CHECK (balance >= 0)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE checkpoint (\n"
	"  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
	"  position INTEGER NOT NULL\n"
	");\n"
	"INSERT INTO checkpoint VALUES (1, 0);\n";

/* Every statement, prepared once at open. */
enum {
	Q_BEGIN, Q_BEGIN_READ, Q_COMMIT, Q_ROLLBACK,
	Q_STREAM_ID, Q_STREAM_NAME, Q_STREAM_NEW, Q_STREAM_BUMP, Q_STREAM_UNDO,
	Q_STREAM_DROP,
	Q_EVENT_ADD, Q_READ_STREAM, Q_READ_ALL, Q_HEAD, Q_STREAM_COUNT,
	Q_STREAMS, Q_CHECKPOINT, Q_CHECKPOINT_MOVE, Q_BALANCE_PUT,
	Q_BALANCES_CLEAR, Q_BALANCES,
	Q_COUNT
};

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_STREAM_ID] = "SELECT id FROM streams WHERE name = ?1",
	[Q_STREAM_NAME] = "SELECT name FROM streams WHERE id = ?1",
	[Q_STREAM_NEW] = "INSERT INTO streams (name, version) VALUES (?1, 1)",
	[Q_STREAM_BUMP] = "UPDATE streams SET version = ?2 + 1 "
			  "WHERE id = ?1 AND version = ?2",
	[Q_STREAM_UNDO] = "UPDATE streams SET version = version - 1 WHERE id = ?1",
	[Q_STREAM_DROP] = "DELETE FROM streams WHERE id = ?1",
	[Q_EVENT_ADD] = "INSERT INTO event_log (stream, version, type, amount, time) "
			"VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_READ_STREAM] = "SELECT position, version, type, amount, time FROM event_log "
			  "WHERE stream = ?1 AND version > ?2 ORDER BY version",
	[Q_READ_ALL] = "SELECT position, version, type, amount, time, stream "
		       "FROM event_log WHERE position > ?1 ORDER BY position LIMIT ?2",
	[Q_HEAD] = "SELECT coalesce(max(position), 0) FROM event_log",
	[Q_STREAM_COUNT] = "SELECT count(*) FROM streams",
	[Q_STREAMS] = "SELECT name FROM streams WHERE name >= ?1 ORDER BY name",
	[Q_CHECKPOINT] = "SELECT position FROM checkpoint WHERE id = 1",
	[Q_CHECKPOINT_MOVE] = "UPDATE checkpoint SET position = ?2 "
			      "WHERE id = 1 AND position = ?1",
	[Q_BALANCE_PUT] = "INSERT INTO balances (account, balance) VALUES (?1, ?2) "
			  "ON CONFLICT (account) DO UPDATE SET balance = excluded.balance",
	[Q_BALANCES_CLEAR] = "DELETE FROM balances",
	[Q_BALANCES] = "SELECT account, balance FROM balances",
};

typedef struct sql_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	/* the streams' numbers, as far as they are known */
	idmap *names;		/* name -> slot */
	int64_t *id_of;		/* by slot */
	uint32_t *slot_of;	/* by id: slot + 1, 0 if not known */
	int64_t slot_cap, id_cap;
} sql_store;

/* Records the database's last error as the store's; returns ERR_STORAGE. */
static error_code db_fail(sql_store *q, const char *what)
{
	return store_fail(&q->base, "%s: %s", what, sqlite3_errmsg(q->db));
}

/* Resets a statement for its next use; its bindings are overwritten then. */
static sqlite3_stmt *stmt(sql_store *q, int which)
{
	sqlite3_stmt *st = q->q[which];
	sqlite3_reset(st);
	return st;
}

/* Runs a statement that returns no rows. */
static int run(sql_store *q, int which)
{
	int rc = sqlite3_step(q->q[which]);
	sqlite3_reset(q->q[which]);
	return rc;
}

/* ---- stream numbers ---- */

/* Remembers that name is stream id; returns its slot. */
static uint32_t remember(sql_store *q, const char *name, int64_t id)
{
	uint32_t slot = idmap_intern(q->names, name, strlen(name), NULL);
	if (slot >= q->slot_cap) {
		q->slot_cap = q->slot_cap ? q->slot_cap * 2 : 1024;
		q->id_of = xreallocarray(q->id_of, (size_t)q->slot_cap,
					 sizeof *q->id_of);
	}
	q->id_of[slot] = id;
	/* ids are 1, 2, 3, …: a plain array, unless someone gave a stream a
	 * far larger id by hand; then only the map knows it */
	if (id < (1 << 24)) {
		if (id >= q->id_cap) {
			int64_t n = id < 512 ? 1024 : id * 2;
			q->slot_of = xreallocarray(q->slot_of, (size_t)n,
						   sizeof *q->slot_of);
			memset(q->slot_of + q->id_cap, 0,
			       (size_t)(n - q->id_cap) * sizeof *q->slot_of);
			q->id_cap = n;
		}
		q->slot_of[id] = slot + 1;
	}
	return slot;
}

/* Forgets every number: a rolled-back group may have made some that the
 * file does not have. */
static void forget_numbers(sql_store *q)
{
	idmap_free(q->names);
	q->names = idmap_new();
	if (q->slot_of)
		memset(q->slot_of, 0, (size_t)q->id_cap * sizeof *q->slot_of);
}

/* The stream's id: 0 if it has none yet, -1 on failure. */
static int64_t stream_id(sql_store *q, const char *name)
{
	uint32_t slot = idmap_find(q->names, name, strlen(name));
	if (slot != IDMAP_NONE)
		return q->id_of[slot];
	sqlite3_stmt *st = stmt(q, Q_STREAM_ID);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0)
				      : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	if (id > 0)
		remember(q, name, id);
	return id;
}

/* The name of stream id (owned by the store), or NULL on failure. */
static const char *stream_name(sql_store *q, int64_t id)
{
	if (id > 0 && id < q->id_cap && q->slot_of[id] != 0)
		return idmap_key(q->names, q->slot_of[id] - 1);
	sqlite3_stmt *st = stmt(q, Q_STREAM_NAME);
	sqlite3_bind_int64(st, 1, id);
	const char *name = NULL;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		if (text)
			name = idmap_key(q->names, remember(q, text, id));
	}
	sqlite3_reset(st);
	return name;
}

/* ---- groups: store.c keeps the state, these are the transactions ---- */

static error_code sql_begin(store *s)
{
	sql_store *q = (sql_store *)s;
	return run(q, Q_BEGIN) == SQLITE_DONE
		       ? ERR_OK : db_fail(q, "cannot start a transaction");
}

static error_code sql_commit(store *s)
{
	sql_store *q = (sql_store *)s;
	return run(q, Q_COMMIT) == SQLITE_DONE ? ERR_OK : db_fail(q, "cannot commit");
}

static void sql_rollback(store *s)
{
	sql_store *q = (sql_store *)s;
	if (!sqlite3_get_autocommit(q->db))
		run(q, Q_ROLLBACK);
	forget_numbers(q);	/* it may have numbered streams the file lacks */
}

/* ---- events ---- */

/* Moves one stream from ev->expected_version to the next: ERR_CONFLICT,
 * with nothing written, if it is not there. *id is the stream's number. */
static error_code claim_version(sql_store *q, const store_new_event *ev,
				int64_t *id)
{
	*id = stream_id(q, ev->stream);
	if (*id < 0)
		return db_fail(q, "cannot read a stream");
	if (ev->stream_key && *id > 0 && *id < UINT32_MAX)
		*ev->stream_key = (uint32_t)*id;	/* readers see the same */
	sqlite3_stmt *st;
	if (ev->expected_version == 0) {
		if (*id > 0)
			return ERR_CONFLICT;	/* it exists now */
		st = stmt(q, Q_STREAM_NEW);
		sqlite3_bind_text(st, 1, ev->stream, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			return db_fail(q, "cannot add a stream");
		*id = sqlite3_last_insert_rowid(q->db);
		remember(q, ev->stream, *id);
		if (ev->stream_key && *id < UINT32_MAX)
			*ev->stream_key = (uint32_t)*id;
		return ERR_OK;
	}
	if (*id == 0)
		return ERR_CONFLICT;	/* expected a stream that is not there */
	st = stmt(q, Q_STREAM_BUMP);
	sqlite3_bind_int64(st, 1, *id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)ev->expected_version);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(q, "cannot write a stream's version");
	return sqlite3_changes(q->db) == 1 ? ERR_OK : ERR_CONFLICT;
}

/* Puts back what claim_version did for evs[0..n), after a later stream of
 * the same append conflicted: versions step back, new streams go. */
static error_code unclaim(sql_store *q, const store_new_event *evs,
			  const int64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool added = evs[i].expected_version == 0;
		sqlite3_stmt *st = stmt(q, added ? Q_STREAM_DROP : Q_STREAM_UNDO);
		sqlite3_bind_int64(st, 1, ids[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			return db_fail(q, "cannot undo a stream's version");
		if (added)	/* its number may go to another name */
			forget_numbers(q);
	}
	return ERR_OK;
}

static error_code sql_append(store *s, const store_new_event *evs, size_t n,
			     int64_t time_ms, uint64_t *last_position)
{
	sql_store *q = (sql_store *)s;
	int64_t ids[2];
	if (n > sizeof ids / sizeof *ids)	/* a transfer is the most */
		return store_fail(s, "an append of %zu events", n);
	error_code rc = store_group_begin(s);
	if (rc != ERR_OK)
		return rc;
	/* Under the group's write lock nothing else moves, so a conflict can
	 * put back what this append claimed and leave the group as it was. */
	for (size_t i = 0; i < n; i++) {
		rc = claim_version(q, &evs[i], &ids[i]);
		if (rc == ERR_CONFLICT)	/* put back, or give up the group */
			rc = unclaim(q, evs, ids, i) == ERR_OK ? ERR_CONFLICT
							      : ERR_STORAGE;
		if (rc == ERR_CONFLICT)
			return rc;
		if (rc != ERR_OK)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = stmt(q, Q_EVENT_ADD);
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)evs[i].expected_version + 1);
		sqlite3_bind_int(st, 3, evs[i].type);
		sqlite3_bind_int64(st, 4, evs[i].amount);
		sqlite3_bind_int64(st, 5, time_ms);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = db_fail(q, "cannot write an event");
			goto fail;
		}
	}
	*last_position = (uint64_t)sqlite3_last_insert_rowid(q->db);
	return ERR_OK;
fail:
	/* half an append must never be kept: the group goes */
	store_group_abandon(s);
	return rc;
}

/* Reads an event row laid out as position, version, type, amount, time. */
static error_code row_event(sql_store *q, sqlite3_stmt *st, store_event *ev)
{
	int type = sqlite3_column_int(st, 2);
	ev->position = (uint64_t)sqlite3_column_int64(st, 0);
	ev->version = (uint64_t)sqlite3_column_int64(st, 1);
	ev->amount = sqlite3_column_int64(st, 3);
	ev->time_ms = sqlite3_column_int64(st, 4);
	ev->stream_key = 0;
	if (type != EVENT_CREDITED && type != EVENT_DEBITED)
		return store_fail(&q->base, "event %llu has an unknown type",
				  (unsigned long long)ev->position);
	ev->type = (event_type)type;
	return ERR_OK;
}

/* Steps st, calling fn per row, until the rows end or fn says stop. A row
 * with a sixth column, the stream's number, is named from it. */
static error_code each_event(sql_store *q, sqlite3_stmt *st, const char *stream,
			     store_event_fn fn, void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_event ev;
		if (row_event(q, st, &ev) != ERR_OK) {
			sqlite3_reset(st);
			return ERR_STORAGE;
		}
		ev.stream = stream;
		if (stream == NULL) {
			int64_t id = sqlite3_column_int64(st, 5);
			if ((ev.stream = stream_name(q, id)) == NULL) {
				sqlite3_reset(st);
				return store_fail(&q->base,
						  "event %llu has no stream",
						  (unsigned long long)ev.position);
			}
			if (id < UINT32_MAX)
				ev.stream_key = (uint32_t)id;
		}
		if (fn(ctx, &ev))
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(q, "cannot read events");
	return ERR_OK;
}

static error_code sql_read_stream(store *s, const char *stream,
				  uint64_t after_version, store_event_fn fn,
				  void *ctx)
{
	sql_store *q = (sql_store *)s;
	int64_t id = stream_id(q, stream);
	if (id <= 0)
		return id == 0 ? ERR_OK : db_fail(q, "cannot read a stream");
	sqlite3_stmt *st = stmt(q, Q_READ_STREAM);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after_version);
	return each_event(q, st, stream, fn, ctx);
}

static error_code sql_read_all(store *s, uint64_t after, size_t limit,
			       store_event_fn fn, void *ctx)
{
	sql_store *q = (sql_store *)s;
	sqlite3_stmt *st = stmt(q, Q_READ_ALL);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	return each_event(q, st, NULL, fn, ctx);
}

/* Runs a statement that returns one integer. */
static error_code one_int(sql_store *q, int which, int64_t *v, const char *what)
{
	sqlite3_stmt *st = stmt(q, which);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? ERR_OK : db_fail(q, what);
}

static error_code sql_head(store *s, uint64_t *head)
{
	int64_t v = 0;
	error_code rc = one_int((sql_store *)s, Q_HEAD, &v, "cannot read the head");
	*head = (uint64_t)v;
	return rc;
}

static error_code sql_stream_count(store *s, uint64_t *count)
{
	int64_t v = 0;
	error_code rc = one_int((sql_store *)s, Q_STREAM_COUNT, &v,
				"cannot count the streams");
	*count = (uint64_t)v;
	return rc;
}

static error_code sql_streams(store *s, const char *prefix, store_stream_fn fn,
			      void *ctx)
{
	sql_store *q = (sql_store *)s;
	sqlite3_stmt *st = stmt(q, Q_STREAMS);
	size_t len = strlen(prefix);
	int rc;
	sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (id == NULL || strncmp(id, prefix, len) != 0 || fn(ctx, id))
			break;	/* sorted: past the prefix, none follow */
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(q, "cannot list the streams");
	return ERR_OK;
}

/* ---- the balance sheet ---- */

static error_code sql_sheet_checkpoint(store *s, uint64_t *checkpoint)
{
	int64_t v = 0;
	error_code rc = one_int((sql_store *)s, Q_CHECKPOINT, &v,
				"cannot read the checkpoint");
	*checkpoint = (uint64_t)v;
	return rc;
}

static error_code sql_sheet_load(store *s, uint64_t *checkpoint,
				 store_balance_fn fn, void *ctx)
{
	sql_store *q = (sql_store *)s;
	/* The checkpoint and the rows must come from one snapshot: another
	 * shell's refresh may commit between two reads. A group already is
	 * one; otherwise a read transaction makes one. */
	bool snapshot = !s->in_group;
	if (snapshot && run(q, Q_BEGIN_READ) != SQLITE_DONE)
		return db_fail(q, "cannot read the balance sheet");
	error_code err = sql_sheet_checkpoint(s, checkpoint);
	int rc = SQLITE_DONE;
	if (err == ERR_OK) {
		sqlite3_stmt *st = stmt(q, Q_BALANCES);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			if (id && fn(ctx, id, sqlite3_column_int64(st, 1)))
				break;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			err = db_fail(q, "cannot read the balance sheet");
	}
	if (snapshot)
		run(q, err == ERR_OK ? Q_COMMIT : Q_ROLLBACK);
	return err;
}

static error_code sql_sheet_save(store *s, uint64_t from, uint64_t to,
				 const store_balance *rows, size_t n,
				 bool replace)
{
	sql_store *q = (sql_store *)s;
	error_code rc = store_group_begin(s);
	if (rc != ERR_OK)
		return rc;
	sqlite3_stmt *st = stmt(q, Q_CHECKPOINT_MOVE);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)to);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(q, "cannot move the checkpoint");
		goto fail;
	}
	if (sqlite3_changes(q->db) != 1)
		return ERR_CONFLICT;	/* nothing written: the group is intact */
	if (replace && run(q, Q_BALANCES_CLEAR) != SQLITE_DONE) {
		rc = db_fail(q, "cannot empty the balance sheet");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		st = stmt(q, Q_BALANCE_PUT);
		sqlite3_bind_text(st, 1, rows[i].account, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, rows[i].balance);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = db_fail(q, "cannot write the balance sheet");
			goto fail;
		}
	}
	return ERR_OK;
fail:
	store_group_abandon(s);
	return rc;
}

/* ---- opening ---- */

static void sql_free(store *s)
{
	sql_store *q = (sql_store *)s;
	if (s->in_group)	/* the shell commits what it showed */
		sql_rollback(s);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(q->q[i]);
	sqlite3_close(q->db);
	idmap_free(q->names);
	free(q->id_of);
	free(q->slot_of);
	free(q);
}

static const store_ops sqlite_ops = {
	.kind = "sqlite",
	.free = sql_free,
	.append = sql_append,
	.read_stream = sql_read_stream,
	.read_all = sql_read_all,
	.head = sql_head,
	.stream_count = sql_stream_count,
	.streams = sql_streams,
	.begin = sql_begin,
	.commit = sql_commit,
	.rollback = sql_rollback,
	.sheet_checkpoint = sql_sheet_checkpoint,
	.sheet_load = sql_sheet_load,
	.sheet_save = sql_sheet_save,
};

/* Runs one statement of SQL text at open; false on failure. */
static bool exec_sql(sqlite3 *db, const char *text)
{
	return sqlite3_exec(db, text, NULL, NULL, NULL) == SQLITE_OK;
}

/* One integer from a pragma or query, or false. */
static bool query_int(sqlite3 *db, const char *text, int64_t *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, text, -1, &st, NULL) != SQLITE_OK)
		return false;
	bool ok = sqlite3_step(st) == SQLITE_ROW;
	if (ok)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return ok;
}

/* Why SQLite could not use the file, in words for people. */
static void say_why(sqlite3 *db, char *why, size_t why_len)
{
	int code = sqlite3_errcode(db);
	int sys = sqlite3_system_errno(db);
	if (code == SQLITE_NOTADB)
		snprintf(why, why_len, "not a SQLite database");
	else if (sys != 0)
		snprintf(why, why_len, "%s (%s)", sqlite3_errmsg(db), strerror(sys));
	else
		snprintf(why, why_len, "%s", sqlite3_errmsg(db));
}

/* The file's application id, schema version and number of tables etc., read
 * in one transaction: another shell may be making the schema meanwhile. */
static bool read_header(sqlite3 *db, int64_t *app, int64_t *version,
			int64_t *objects, char *why, size_t why_len)
{
	bool outer = sqlite3_get_autocommit(db);
	bool ok = (!outer || exec_sql(db, "BEGIN")) &&
		  query_int(db, "PRAGMA application_id", app) &&
		  query_int(db, "PRAGMA user_version", version) &&
		  query_int(db, "SELECT count(*) FROM sqlite_master", objects);
	if (!ok)
		say_why(db, why, why_len);	/* before ROLLBACK clears it */
	if (outer)
		exec_sql(db, ok ? "COMMIT" : "ROLLBACK");
	return ok;
}

/* Checks that db is this program's ledger, or empty; on a new file writes
 * the schema. Reads before it writes anything, so a file that is not ours is
 * left exactly as it was. */
static bool check_schema(sqlite3 *db, char *why, size_t why_len)
{
	int64_t app = 0, version = 0, objects = 0;
	if (!read_header(db, &app, &version, &objects, why, why_len))
		return false;
	if (app == 0 && version == 0 && objects == 0) {
		/* A new (or empty) file: make it a ledger, in WAL mode. Another
		 * shell may be doing the same: under the write lock, look again. */
		char stamp[96];
		snprintf(stamp, sizeof stamp,
			 "PRAGMA application_id = %d; PRAGMA user_version = %d",
			 APPLICATION_ID, SCHEMA_VERSION);
		if (!exec_sql(db, "PRAGMA journal_mode = WAL") ||
		    !exec_sql(db, "BEGIN IMMEDIATE")) {
			say_why(db, why, why_len);
			return false;
		}
		if (!read_header(db, &app, &version, &objects, why, why_len)) {
			exec_sql(db, "ROLLBACK");
			return false;
		}
		if (app == 0 && version == 0 && objects == 0) {
			if (!exec_sql(db, schema) || !exec_sql(db, stamp) ||
			    !exec_sql(db, "COMMIT")) {
				say_why(db, why, why_len);
				exec_sql(db, "ROLLBACK");
				return false;
			}
			return true;
		}
		exec_sql(db, "ROLLBACK");	/* the other shell made it */
	}
	if (app != APPLICATION_ID) {
		snprintf(why, why_len,
			 "a SQLite database of another program, not a simplecqrs ledger");
		return false;
	}
	if (version > SCHEMA_VERSION) {
		snprintf(why, why_len,
			 "ledger schema version %lld is newer than this simplecqrs knows (%d)",
			 (long long)version, SCHEMA_VERSION);
		return false;
	}
	if (version < 1) {
		snprintf(why, why_len, "a damaged ledger (schema version %lld)",
			 (long long)version);
		return false;
	}
	int64_t wal = 0;
	if (!query_int(db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", &wal)) {
		say_why(db, why, why_len);
		return false;
	}
	if (!wal && !exec_sql(db, "PRAGMA journal_mode = WAL")) {
		say_why(db, why, why_len);
		return false;
	}
	return true;
}

/* Creates path 0600 if it is not there; *created says whether it was. */
static bool create_file(const char *path, bool *created, char *why,
			size_t why_len)
{
	struct stat st;
	*created = false;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			snprintf(why, why_len, "it is a folder");
			return false;
		}
		return true;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return true;	/* another shell made it just now */
	if (fd < 0) {
		snprintf(why, why_len, "cannot create it: %s", strerror(errno));
		return false;
	}
	close(fd);
	*created = true;
	return true;
}

/* Nothing has been written to path or its WAL yet. */
static bool still_empty(const char *path)
{
	struct stat st;
	char *wal = xmalloc(strlen(path) + 5);
	strcpy(stpcpy(wal, path), "-wal");
	bool empty = stat(path, &st) == 0 && st.st_size == 0 &&
		     (stat(wal, &st) != 0 || st.st_size == 0);
	free(wal);
	return empty;
}

/* Removes a ledger file we created, and its WAL files. */
static void remove_files(const char *path)
{
	static const char *const suffix[] = { "-wal", "-shm", "" };
	char *name = xmalloc(strlen(path) + 5);
	for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
		strcpy(stpcpy(name, path), suffix[i]);
		unlink(name);
	}
	free(name);
}

store *store_sqlite_open(const char *path, char *why, size_t why_len)
{
	bool created;
	if (path[0] == '\0') {
		snprintf(why, why_len, "no file named; use sqlite:PATH, as in sqlite:ledger.db");
		return NULL;
	}
	if (!create_file(path, &created, why, why_len))
		return NULL;

	sql_store *q = xcalloc(1, sizeof *q);
	q->base.ops = &sqlite_ops;
	q->names = idmap_new();
	/* no URI names, no shared cache: path is a file name, nothing more */
	int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		/* before anything else, so that every statement waits for a
		 * busy writer rather than failing */
		sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
		if (sqlite3_db_readonly(q->db, "main") == 1) {
			snprintf(why, why_len, "the file is read-only");
			goto fail;
		}
	} else if (q->db) {
		say_why(q->db, why, why_len);
		goto fail;
	} else {
		snprintf(why, why_len, "out of memory");
		goto fail;
	}
	/* Shells opening a new file together can meet where SQLite will not
	 * wait (one reading while another switches it to WAL): try again. */
	for (int tries = 0; !check_schema(q->db, why, why_len); tries++) {
		if ((sqlite3_errcode(q->db) & 0xff) != SQLITE_BUSY ||
		    tries * 10 >= BUSY_TIMEOUT_MS)
			goto fail;
		sqlite3_sleep(10);
	}
	if (!exec_sql(q->db, "PRAGMA synchronous = FULL") ||
	    !exec_sql(q->db, "PRAGMA cache_size = -65536")) {
		say_why(q->db, why, why_len);
		goto fail;
	}
	for (int i = 0; i < Q_COUNT; i++) {
		if (sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &q->q[i], NULL) != SQLITE_OK) {
			say_why(q->db, why, why_len);
			goto fail;
		}
	}
	return &q->base;
fail:
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(q->q[i]);
	sqlite3_close(q->db);
	idmap_free(q->names);
	free(q);
	/* Leave nothing behind that we made, unless another shell opening
	 * the same new file has written its ledger into it meanwhile. */
	if (created && still_empty(path))
		remove_files(path);
	return NULL;
}
