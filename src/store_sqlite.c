/* store_sqlite.c — the sqlite:PATH store: events and balance sheet in one file.
 *
 * Tables (see README, "The SQLite file"): streams, one row per account with
 * its number, version and balance (the account's kept state, schema 2);
 * event_log, one compact row per event, its position the rowid, unique on
 * (stream, version), the backstop of every append; balances and checkpoint,
 * the kept balance sheet. A view,
 * events, shows the log with account names, type names and ISO times, so
 * `sqlite3 PATH 'select * from events'` reads like `history`. The file is in
 * WAL mode with synchronous=FULL.
 *
 * Writes are gathered in a group: the first write after a commit opens a
 * BEGIN IMMEDIATE transaction, later ones join it, and store_commit ends it.
 * The session commits before it shows any result, so a result is never seen
 * before its events are on disk, and a piped script pays one fsync per group
 * rather than per command. Holding the write lock for the group also means
 * that what the group read cannot change under it: store_sql.c's writer
 * table, caught up at the group's start, checks each append's versions in
 * memory, and each moved stream's row is written once, at the commit.
 * Another shell waits (the
 * busy handler, which asks the shell's wait hook every 100 ms) until the
 * group commits (store.c ends a group within about 100 ms). The wait goes
 * on as long as the ledger moves: the WAL file changes at every commit, so
 * the handler stats it (it may run no statement on its connection), and a
 * write fails as busy only when nobody committed for 10 s (a holder that
 * keeps the lock without progress). Waiters take turns: a waiting shell
 * holds a shared OFD lock on a byte of the file's lock page that SQLite
 * never uses (WAIT_BYTE), and a shell that commits while someone waits
 * lets the lock go to one of them (it waits, up to YIELD_MS, until SQLite's
 * WAL write lock in the -shm file is taken by another) before it takes the
 * lock again, rather than winning it back at once.
 *
 * The file is opened by its absolute path (never as a URI name), must be a
 * regular file with one name: SQLite keeps the WAL and its lock by name, so
 * two names for one file (a hard link, or a rename while a shell has it
 * open) would give each its own WAL and fork the ledger. Each write group
 * checks that the name still leads to the open file.
 *
 * Account names are numbered once, and the numbers never change or go, so
 * the store remembers them: an append names its streams by number, and
 * readers get the number as the event's stream_key.
 *
 * The append, the sheet's save and load and the schema decision at open are
 * store_sql.c's algorithms; this file gives them its statements
 * (sqlite_prims). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"
#include "store_sql.h"

#define APPLICATION_ID 0x53435152	/* "SCQR": this file is a simplecqrs ledger */
#define SCHEMA_VERSION 2		/* PRAGMA user_version this build writes */
#define BUSY_TIMEOUT_MS 10000		/* how long to wait for another writer */
#define BUSY_TELL_MS 100		/* how often the wait hook hears of it */
#define BUSY_STEP_US 5000		/* a waiter's sleep between tries */
#define YIELD_MS 20			/* a committer's wait for a waiter to take
					   the lock before it takes it again */
/* In the lock-byte page (1 GiB in; SQLite locks 0x40000000..+511 there
 * and never reads or writes the page), far from SQLite's own bytes. */
#define WAIT_BYTE 0x40000400
/* SQLite's WAL write lock: the first lock byte of the -shm file (unix VFS:
 * 120 + WAL_WRITE_LOCK, which is 0). */
#define SHM_WRITE_BYTE 120
#define BACKUP_STEP_PAGES 1024		/* pages a backup copies per step */

/* Each stream's row. balance is the account's kept state, taken at
 * balance_version, which must be the row's version: a program of schema 1
 * still open on an upgraded ledger moves version (or adds a row) without
 * balance, and so fails (its group rolls back) rather than leave a stale
 * balance that this one would decide on. No default satisfies it. */
#define STREAMS_TABLE(name) \
	"CREATE TABLE " name " (\n" \
	"  id INTEGER PRIMARY KEY,\n" \
	"  name TEXT NOT NULL UNIQUE,\n" \
	"  version INTEGER NOT NULL CHECK (version > 0),\n" \
	"  balance INTEGER NOT NULL CHECK (balance >= 0),\n" \
	"  balance_version INTEGER NOT NULL CHECK (balance_version = version)\n" \
	");\n"

#define EVENTS_VIEW \
	"CREATE VIEW events AS\n" \
	"  SELECT e.position, s.name AS stream, e.version,\n" \
	"         CASE e.type WHEN 1 THEN 'AccountCredited' ELSE 'AccountDebited' END AS type,\n" \
	"         e.amount,\n" \
	"         strftime('%Y-%m-%dT%H:%M:%fZ', e.time / 1000.0, 'unixepoch') AS time\n" \
	"  FROM event_log e JOIN streams s ON s.id = e.stream;\n"

static const char schema[] =
	STREAMS_TABLE("streams")
	"CREATE TABLE event_log (\n"
	"  position INTEGER PRIMARY KEY,\n"
	"  stream INTEGER NOT NULL REFERENCES streams (id),\n"
	"  version INTEGER NOT NULL CHECK (version > 0),\n"
	"  type INTEGER NOT NULL CHECK (type IN (1, 2)),\n"
	"  amount INTEGER NOT NULL CHECK (amount > 0),\n"
	"  time INTEGER NOT NULL,\n"
	"  UNIQUE (stream, version)\n"
	");\n"
	EVENTS_VIEW
	"CREATE TABLE balances (\n"
	"  account TEXT PRIMARY KEY,\n"
	"  balance INTEGER NOT NULL CHECK (balance >= 0)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE checkpoint (\n"
	"  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
	"  position INTEGER NOT NULL\n"
	");\n"
	"INSERT INTO checkpoint VALUES (1, 0);\n";

/* Schema 1 to 2: each stream's balance beside its version, added up from
 * its events, taken at its version (the upgrade's one transaction is
 * schema_lock's). SQLite adds no column with a CHECK that the rows already
 * there fail, so streams is made anew (SQLite's way: a new table, the rows
 * copied, the old one dropped and the new one renamed; the ids stay, and
 * the view, which names the table, is made again). */
static const char upgrade_1_2[] =
	"DROP VIEW events;\n"
	STREAMS_TABLE("streams_2")
	"INSERT INTO streams_2 (id, name, version, balance, balance_version) "
	"SELECT id, name, version, coalesce((SELECT sum(CASE e.type WHEN 1 "
	"THEN e.amount ELSE -e.amount END) FROM event_log e "
	"WHERE e.stream = streams.id), 0), version FROM streams;\n"
	"DROP TABLE streams;\n"
	"ALTER TABLE streams_2 RENAME TO streams;\n"
	EVENTS_VIEW;

/* Every statement, prepared once at open. */
enum {
	Q_BEGIN, Q_BEGIN_READ, Q_COMMIT, Q_ROLLBACK,
	Q_STREAM_ID, Q_STREAM_NAME, Q_STREAM_NEW, Q_STREAM_LOAD, Q_STREAM_SAVE,
	Q_EVENTS_AFTER,
	Q_EVENT_ADD, Q_READ_STREAM, Q_READ_ALL, Q_HEAD, Q_STREAM_COUNT,
	Q_STREAMS, Q_CHECKPOINT, Q_CHECKPOINT_MOVE, Q_BALANCE_PUT,
	Q_BALANCES_CLEAR, Q_BALANCES, Q_CHECKPOINT_SET, Q_DATA_VERSION,
	Q_EVENT_COUNT,
	Q_COUNT
};

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_STREAM_ID] = "SELECT id FROM streams WHERE name = ?1",
	[Q_STREAM_NAME] = "SELECT name FROM streams WHERE id = ?1",
	[Q_STREAM_NEW] = "INSERT INTO streams (name, version, balance, "
			 "balance_version) VALUES (?1, 1, 0, 1)",
	/* the row, and where its events end (one seek of the unique index) */
	[Q_STREAM_LOAD] = "SELECT s.id, s.version, s.balance, (SELECT "
			  "coalesce(max(e.version), 0) FROM event_log e "
			  "WHERE e.stream = s.id), s.balance_version "
			  "FROM streams s WHERE s.name = ?1",
	[Q_STREAM_SAVE] = "UPDATE streams SET version = ?2, balance = ?3, "
			  "balance_version = ?2 WHERE id = ?1",
	[Q_EVENTS_AFTER] = "SELECT stream, version, type, amount, position "
			   "FROM event_log WHERE position > ?1 ORDER BY position",
	[Q_EVENT_ADD] = "INSERT INTO event_log (position, stream, version, type, "
			"amount, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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
	[Q_CHECKPOINT_SET] = "UPDATE checkpoint SET position = ?1 WHERE id = 1",
	[Q_DATA_VERSION] = "PRAGMA data_version",
	[Q_EVENT_COUNT] = "SELECT count(*) FROM event_log",
};

typedef struct sql_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	store_sql_writer *writer;	/* the streams, true under the lock */
	/* the streams' numbers, as far as they are known */
	idmap *names;		/* name -> slot */
	int64_t *id_of;		/* by slot */
	uint32_t *slot_of;	/* by id: slot + 1, 0 if not known */
	int64_t slot_cap, id_cap;
	/* waiting for another program's write lock */
	uint64_t busy_since;	/* ms, monotonic: when this wait began */
	unsigned busy_told;	/* ms waited when the hook was last asked */
	bool busy_stopped;	/* the hook ended the wait */
	uint64_t busy_moved;	/* ms: when the WAL was last seen to change */
	struct stat busy_wal;	/* the WAL as last seen */
	/* taking turns: own descriptors of the file and its -shm (O_RDONLY,
	 * for OFD locks only; closed only when no SQLite connection of this
	 * process may hold POSIX locks on them, since a close drops those) */
	char *wal_path, *shm_path;
	int turn_fd, shm_fd;
	bool beginning;		/* in BEGIN IMMEDIATE: a wait marks WAIT_BYTE */
	bool marked;		/* this shell's wait mark is on WAIT_BYTE */
	bool yield;		/* others waited at this shell's last commit */
	/* store_poll: data_version moves on others' commits, commits on ours */
	int64_t data_version;
	uint64_t commits, polled_commits;
} sql_store;

/* sqlite stores open in this process: open_by_another_name opens and closes
 * the file, and a close drops every POSIX lock this process holds on it. */
static int open_ledgers;

/* This store's statements for store_sql's algorithms (defined below). */
static const store_sql_prims sqlite_prims;

/* What a damaged ledger lacks, for the one place each is found missing. */
static const char checkpoint_missing[] =
	"the ledger is damaged: its checkpoint row is missing (put it back with "
	"INSERT INTO checkpoint VALUES (1, 0), then run rebuild)";

/* Records the database's last error as the store's; returns ERR_STORAGE.
 * A statement that ended without the row it needed leaves no error behind
 * ("not an error"): that is a damaged ledger, and says so. */
static error_code db_fail(sql_store *q, const char *what)
{
	int code = sqlite3_errcode(q->db);
	if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE)
		return store_base_fail(&q->base, "%s: the ledger is damaged (a row "
				       "it needs is missing)", what);
	return store_base_fail(&q->base, "%s: %s", what, sqlite3_errmsg(q->db));
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- waiting for the write lock, and taking turns ---- */

/* <fcntl.h> names OFD locks only under _GNU_SOURCE: Linux's numbers
 * (since 3.15); elsewhere fcntl fails and waiters do not take turns. */
#ifndef F_OFD_SETLK
#ifdef __linux__
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#else
#define F_OFD_GETLK (-2)
#define F_OFD_SETLK (-1)
#endif
#endif

/* An OFD lock of type on one byte of fd, by F_OFD_SETLK (true: done), or
 * asked about by F_OFD_GETLK (true: another holds a lock that conflicts). */
static bool ofd_lock(int fd, int cmd, short type, off_t at)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = at,
			    .l_len = 1 };
	if (fd < 0 || fcntl(fd, cmd, &fl) != 0)
		return false;
	return cmd == F_OFD_GETLK ? fl.l_type != F_UNLCK : true;
}

/* Whether another shell waits for the write lock (its mark on WAIT_BYTE):
 * 1 yes, 0 no, -1 cannot tell (no OFD locks here). */
static int waiters(const sql_store *q)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = WAIT_BYTE, .l_len = 1 };
	if (q->turn_fd < 0 || fcntl(q->turn_fd, F_OFD_GETLK, &fl) != 0)
		return -1;
	return fl.l_type != F_UNLCK;
}

static void mark_waiting(sql_store *q, bool on)
{
	if (q->marked != on &&
	    ofd_lock(q->turn_fd, F_OFD_SETLK, on ? F_RDLCK : F_UNLCK, WAIT_BYTE))
		q->marked = on;
}

/* The WAL changed since last seen (a commit, or a checkpoint's restart).
 * A WAL that cannot be seen shows no progress: the wait is then the old
 * one, busy after BUSY_TIMEOUT_MS. */
static bool wal_moved(sql_store *q, bool first)
{
	struct stat st;
	if (q->wal_path == NULL || stat(q->wal_path, &st) != 0)
		return false;
	bool moved = !first && (st.st_ino != q->busy_wal.st_ino ||
				st.st_size != q->busy_wal.st_size ||
				st.st_mtim.tv_sec != q->busy_wal.st_mtim.tv_sec ||
				st.st_mtim.tv_nsec != q->busy_wal.st_mtim.tv_nsec);
	q->busy_wal = st;
	return moved;
}

/* After a commit that others waited for: lets one of them take the write
 * lock first (it is woken within a BUSY_STEP_US), for at most YIELD_MS. */
static void let_waiter_in(sql_store *q)
{
	q->yield = false;
	if (q->shm_fd < 0 && q->shm_path)
		q->shm_fd = open(q->shm_path, O_RDONLY | O_CLOEXEC);
	uint64_t until = now_ms() + YIELD_MS;
	struct timespec step = { 0, 250 * 1000 };
	while (!ofd_lock(q->shm_fd, F_OFD_GETLK, F_WRLCK, SHM_WRITE_BYTE) &&
	       now_ms() < until)
		nanosleep(&step, NULL);
}

/* SQLite's busy handler: another connection holds a lock this one needs.
 * Sleeps in short steps (a signal cuts one short), asks the wait hook every
 * BUSY_TELL_MS, and gives up when the hook says so or when the WAL has not
 * moved for BUSY_TIMEOUT_MS (nobody committed: the holder makes no
 * progress); SQLite then fails the statement with SQLITE_BUSY, having
 * written nothing. While others commit it waits on. */
static int on_busy(void *ctx, int count)
{
	sql_store *q = ctx;
	uint64_t now = now_ms();
	if (count == 0) {
		q->busy_since = q->busy_moved = now;
		q->busy_told = 0;
		q->busy_stopped = false;
		wal_moved(q, true);
		if (q->beginning)
			mark_waiting(q, true);
	}
	unsigned waited = (unsigned)(now - q->busy_since);
	if (waited >= q->busy_told + BUSY_TELL_MS) {
		q->busy_told = waited;
		if (wal_moved(q, false))
			q->busy_moved = now;
		if (now - q->busy_moved >= BUSY_TIMEOUT_MS)
			return 0;
		if (!store_base_waiting(&q->base, waited)) {
			q->busy_stopped = true;
			return 0;
		}
	}
	struct timespec step = { 0, BUSY_STEP_US * 1000L };
	nanosleep(&step, NULL);
	return 1;
}

/* A write that could not get the lock: ERR_BUSY, nothing written. */
static error_code busy_fail(sql_store *q)
{
	store_base_fail(&q->base, q->busy_stopped
			? "the wait for the ledger's write lock was ended (another "
			  "program holds it)"
			: "another program holds the ledger's write lock (nobody "
			  "committed for %d s)",
			BUSY_TIMEOUT_MS / 1000);
	return ERR_BUSY;
}

static bool is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY;
}

/* The name the ledger was opened by no longer leads to the open file: it
 * was renamed or removed. A shell opening it by the new name would keep
 * its own WAL and lock, so writing on would fork the ledger. (SQLite's unix
 * VFS makes such writes fail itself only in rollback-journal mode.) */
static bool file_moved(sql_store *q)
{
	int moved = 0;
	return sqlite3_file_control(q->db, "main", SQLITE_FCNTL_HAS_MOVED,
				    &moved) == SQLITE_OK && moved;
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

static error_code sql_head(store *s, uint64_t *head);
static error_code group_open(sql_store *q);

static error_code sql_begin(store *s)
{
	sql_store *q = (sql_store *)s;
	q->busy_stopped = false;	/* SQLite may fail busy without asking */
	if (q->yield)
		let_waiter_in(q);
	q->beginning = true;
	int rc = run(q, Q_BEGIN);
	q->beginning = false;
	mark_waiting(q, false);
	if (is_busy(rc))
		return busy_fail(q);
	if (rc != SQLITE_DONE)
		return db_fail(q, "cannot start a transaction");
	if (file_moved(q)) {	/* checked under the lock: nothing moves now */
		run(q, Q_ROLLBACK);
		return store_base_fail(s, "the ledger file %s was renamed or removed "
				       "while this shell had it open; nothing more is "
				       "written to it (open it by its new name)",
				       s->location);
	}
	error_code err = store_sql_begun(s, &sqlite_prims, q->writer);
	if (err != ERR_OK)
		run(q, Q_ROLLBACK);
	return err;
}

static error_code sql_commit(store *s)
{
	sql_store *q = (sql_store *)s;
	error_code rc = store_sql_flush(s, &sqlite_prims, q->writer);
	if (rc == ERR_OK)
		rc = group_open(q);	/* an empty group's too: say it was lost */
	if (rc != ERR_OK)
		return rc;
	if (run(q, Q_COMMIT) != SQLITE_DONE)
		return db_fail(q, "cannot commit");
	store_sql_committed(q->writer);
	q->commits++;
	/* someone waited: the next group lets one of them in first */
	q->yield = waiters(q) == 1;
	return ERR_OK;
}

/* A group past its time bound: someone may wait unless the mark says no. */
static bool sql_others_waiting(store *s)
{
	return waiters((const sql_store *)s) != 0;
}

static void sql_rollback(store *s)
{
	sql_store *q = (sql_store *)s;
	if (!sqlite3_get_autocommit(q->db))
		run(q, Q_ROLLBACK);
	forget_numbers(q);	/* it may have numbered streams the file lacks */
	store_sql_rolled_back(q->writer);
}

/* ---- the primitives of store_sql's write group ---- */

/* SQLite may roll a transaction back by itself after an error (out of
 * memory, a full disk, an I/O error), even one in a read; a write after
 * that would run, and commit, on its own. Every write in a group first
 * checks that the group's transaction is still open. */
static error_code group_open(sql_store *q)
{
	if (!sqlite3_get_autocommit(q->db))
		return ERR_OK;
	return store_base_fail(&q->base, "the write group's transaction was "
			       "rolled back by SQLite after an earlier error");
}

/* The stream's row, and a check that it agrees with its events (under the
 * write lock only a damaged ledger makes them disagree, and writing on
 * from the row would then leave a gap or collide). */
static error_code sql_stream_load(store *s, store_sql_stream *st)
{
	sql_store *q = (sql_store *)s;
	sqlite3_stmt *st_ = stmt(q, Q_STREAM_LOAD);
	sqlite3_bind_text(st_, 1, st->name, (int)st->len, SQLITE_STATIC);
	int rc = sqlite3_step(st_);
	int64_t events = 0, version = 0, taken = 0;
	st->key = 0;
	st->version = 0;
	st->balance = 0;
	st->stored = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		st->key = sqlite3_column_int64(st_, 0);
		version = sqlite3_column_int64(st_, 1);
		st->balance = sqlite3_column_int64(st_, 2);
		events = sqlite3_column_int64(st_, 3);
		taken = sqlite3_column_int64(st_, 4);
	}
	sqlite3_reset(st_);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(q, "cannot read a stream");
	if (rc == SQLITE_DONE)
		return ERR_OK;
	if (version != events || version <= 0)
		return store_base_fail(&q->base, "damaged ledger: account %.64s "
				       "is kept at version %lld but its events "
				       "end at version %lld", st->name,
				       (long long)version, (long long)events);
	if (taken != version)	/* its CHECK was got round */
		return store_base_fail(&q->base, "damaged ledger: account %.64s "
				       "is kept at version %lld but its balance "
				       "was taken at version %lld", st->name,
				       (long long)version, (long long)taken);
	st->version = (uint64_t)version;
	remember(q, st->name, st->key);
	return ERR_OK;
}

static error_code sql_stream_add(store *s, store_sql_stream *st)
{
	sql_store *q = (sql_store *)s;
	if (group_open(q) != ERR_OK)
		return ERR_STORAGE;
	sqlite3_stmt *st_ = stmt(q, Q_STREAM_NEW);
	sqlite3_bind_text(st_, 1, st->name, (int)st->len, SQLITE_STATIC);
	if (sqlite3_step(st_) != SQLITE_DONE)
		return db_fail(q, "cannot add a stream");
	st->key = sqlite3_last_insert_rowid(q->db);
	st->stored = true;
	remember(q, st->name, st->key);
	return ERR_OK;
}

static error_code sql_event_add(store *s, const store_sql_event *ev)
{
	sql_store *q = (sql_store *)s;
	if (group_open(q) != ERR_OK)
		return ERR_STORAGE;
	sqlite3_stmt *st = stmt(q, Q_EVENT_ADD);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ev->position);
	sqlite3_bind_int64(st, 2, ev->stream->key);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ev->version);
	sqlite3_bind_int(st, 4, ev->type);
	sqlite3_bind_int64(st, 5, ev->amount);
	sqlite3_bind_int64(st, 6, ev->time_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(q, "cannot write an event");
	return ERR_OK;
}

static error_code sql_events_after(store *s, uint64_t after,
				   int (*fn)(void *ctx, int64_t key,
					     const char *name, uint64_t position,
					     uint64_t version, event_type type,
					     int64_t amount),
				   void *ctx)
{
	sql_store *q = (sql_store *)s;
	sqlite3_stmt *st = stmt(q, Q_EVENTS_AFTER);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn(ctx, sqlite3_column_int64(st, 0), NULL,
		       (uint64_t)sqlite3_column_int64(st, 4),
		       (uint64_t)sqlite3_column_int64(st, 1),
		       (event_type)sqlite3_column_int(st, 2),
		       sqlite3_column_int64(st, 3)))
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(q, "cannot read the events of other shells");
	return ERR_OK;
}

/* One prepared statement per row: SQLite has no round trips to save. */
static error_code sql_flush(store *s, const store_sql_stream *const *streams,
			    size_t n, const store_sql_sheet_flush *sheet)
{
	sql_store *q = (sql_store *)s;
	if (group_open(q) != ERR_OK)
		return ERR_STORAGE;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = stmt(q, Q_STREAM_SAVE);
		sqlite3_bind_int64(st, 1, streams[i]->key);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)streams[i]->version);
		sqlite3_bind_int64(st, 3, streams[i]->balance);
		if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(q->db) != 1)
			return db_fail(q, "cannot write a stream's version");
	}
	if (sheet == NULL)
		return ERR_OK;
	if (sheet->replace && run(q, Q_BALANCES_CLEAR) != SQLITE_DONE)
		return db_fail(q, "cannot empty the balance sheet");
	sqlite3_stmt *st = stmt(q, Q_CHECKPOINT_SET);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)sheet->checkpoint);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(q, "cannot move the checkpoint");
	for (size_t i = 0; i < sheet->n; i++) {
		st = stmt(q, Q_BALANCE_PUT);
		sqlite3_bind_text(st, 1, sheet->rows[i].account, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, sheet->rows[i].balance);
		if (sqlite3_step(st) != SQLITE_DONE)
			return db_fail(q, "cannot write the balance sheet");
	}
	return ERR_OK;
}

static error_code sql_append(store *s, const store_new_event *evs, size_t n,
			     int64_t time_ms, uint64_t *last_position)
{
	return store_sql_append(s, &sqlite_prims, ((sql_store *)s)->writer, evs,
				n, time_ms, last_position);
}

static error_code sql_stream_state(store *s, const char *stream, size_t len,
				   uint32_t *key, uint64_t *version,
				   int64_t *balance)
{
	return store_sql_stream_state(s, &sqlite_prims, ((sql_store *)s)->writer,
				      stream, len, key, version, balance);
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
		return store_base_fail(&q->base, "event %llu has an unknown type",
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
				return store_base_fail(&q->base,
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

/* Runs a statement that returns one integer; missing says what is gone
 * when the row is not there (NULL: it is always there, an aggregate). */
static error_code one_int(sql_store *q, int which, int64_t *v, const char *what,
			  const char *missing)
{
	sqlite3_stmt *st = stmt(q, which);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE && missing)
		return store_base_fail(&q->base, "%s", missing);
	return rc == SQLITE_ROW ? ERR_OK : db_fail(q, what);
}

/* The last position in the file (store_sql's head primitive). */
static error_code sql_file_head(store *s, uint64_t *head)
{
	int64_t v = 0;
	error_code rc = one_int((sql_store *)s, Q_HEAD, &v, "cannot read the head",
				NULL);
	*head = (uint64_t)v;
	return rc;
}

static error_code sql_head(store *s, uint64_t *head)
{
	return store_sql_head(s, &sqlite_prims, ((sql_store *)s)->writer, head);
}

static error_code sql_stream_count(store *s, uint64_t *count)
{
	int64_t v = 0;
	error_code rc = one_int((sql_store *)s, Q_STREAM_COUNT, &v,
				"cannot count the streams", NULL);
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

/* The checkpoint row (store_sql's checkpoint primitive). */
static error_code sql_checkpoint_row(store *s, uint64_t *checkpoint)
{
	int64_t v = 0;
	error_code rc = one_int((sql_store *)s, Q_CHECKPOINT, &v,
				"cannot read the checkpoint", checkpoint_missing);
	*checkpoint = (uint64_t)v;
	return rc;
}

/* The primitives of store_sql's sheet load and save. */

static error_code sql_checkpoint_move(store *s, uint64_t from, uint64_t to,
				      bool *moved)
{
	sql_store *q = (sql_store *)s;
	if (group_open(q) != ERR_OK)
		return ERR_STORAGE;
	sqlite3_stmt *st = stmt(q, Q_CHECKPOINT_MOVE);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)to);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(q, "cannot move the checkpoint");
	*moved = sqlite3_changes(q->db) == 1;
	return ERR_OK;
}

static error_code sql_balances(store *s, sheet_store_row_fn fn, void *ctx)
{
	sql_store *q = (sql_store *)s;
	sqlite3_stmt *st = stmt(q, Q_BALANCES);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (id && fn(ctx, id, sqlite3_column_int64(st, 1)))
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(q, "cannot read the balance sheet");
	return ERR_OK;
}

static error_code sql_snapshot_begin(store *s)
{
	sql_store *q = (sql_store *)s;
	if (run(q, Q_BEGIN_READ) != SQLITE_DONE)
		return db_fail(q, "cannot read the balance sheet");
	return ERR_OK;
}

static error_code sql_snapshot_end(store *s, error_code rc)
{
	run((sql_store *)s, rc == ERR_OK ? Q_COMMIT : Q_ROLLBACK);
	return rc;
}

static error_code sql_sheet_checkpoint(store *s, uint64_t *checkpoint)
{
	return store_sql_sheet_checkpoint(s, &sqlite_prims,
					  ((sql_store *)s)->writer, checkpoint);
}

static error_code sql_sheet_load(store *s, uint64_t *checkpoint,
				 sheet_store_row_fn fn, void *ctx)
{
	return store_sql_sheet_load(s, &sqlite_prims, ((sql_store *)s)->writer,
				    checkpoint, fn, ctx);
}

static error_code sql_sheet_save(store *s, uint64_t from, uint64_t to,
				 const sheet_store_row *rows, size_t n,
				 bool replace)
{
	return store_sql_sheet_save(s, &sqlite_prims, ((sql_store *)s)->writer,
				    from, to, rows, n, replace);
}

static error_code sql_poll(store *s, bool *changed)
{
	sql_store *q = (sql_store *)s;
	int64_t v = 0;
	error_code rc = one_int(q, Q_DATA_VERSION, &v,
				"cannot read the data version", NULL);
	if (rc != ERR_OK)
		return rc;
	*changed = v != q->data_version || q->commits != q->polled_commits;
	q->data_version = v;
	q->polled_commits = q->commits;
	return ERR_OK;
}

/* ---- opening ---- */

/* Descriptors of closed stores' files, kept open while another store of
 * this process may have a connection to the same file: closing one would
 * drop that connection's POSIX locks (SQLite's shared lock on the file, its
 * -shm locks), and other programs would then take the ledger for unused. */
static int spare_fds[32];
static size_t spare_count;

static void close_later(int fd)
{
	if (fd < 0)
		return;
	if (open_ledgers > 0 && spare_count < sizeof spare_fds / sizeof *spare_fds)
		spare_fds[spare_count++] = fd;	/* else kept open till exit */
	else if (open_ledgers == 0)
		close(fd);
	if (open_ledgers == 0)
		while (spare_count > 0)
			close(spare_fds[--spare_count]);
}

/* The turn-taking's descriptors and names (see the top of the file);
 * without them a shell waits as it did before, without taking turns. */
static void turns_open(sql_store *q, const char *abs)
{
	char *path = realpath(abs, NULL);	/* as SQLite names the -wal */
	if (path == NULL)
		return;
	size_t n = strlen(path);
	q->wal_path = xmalloc(n + 5);
	q->shm_path = xmalloc(n + 5);
	strcpy(stpcpy(q->wal_path, path), "-wal");
	strcpy(stpcpy(q->shm_path, path), "-shm");
	q->turn_fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
}

/* After the connection is closed, with open_ledgers counting the others. */
static void turns_close(sql_store *q)
{
	close_later(q->turn_fd);
	close_later(q->shm_fd);
	free(q->wal_path);
	free(q->shm_path);
}

static void sql_free(store *s)
{
	sql_store *q = (sql_store *)s;
	if (s->in_group)	/* the shell commits what it showed */
		sql_rollback(s);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(q->q[i]);
	/* SQLite leaves the WAL unapplied at close when the file was renamed,
	 * and the new name cannot see it: the events in it would be lost. No
	 * shell can have opened the new name meanwhile (open_by_another_name),
	 * so they go into the file now, and the old name's WAL is emptied. */
	s->wait = NULL;	/* the hook's owner may be gone by now */
	if (file_moved(q))
		sqlite3_wal_checkpoint_v2(q->db, "main", SQLITE_CHECKPOINT_TRUNCATE,
					  NULL, NULL);
	sqlite3_close(q->db);
	open_ledgers--;
	turns_close(q);
	idmap_free(q->names);
	store_sql_writer_free(q->writer);
	free(q->id_of);
	free(q->slot_of);
	free(q);
}

static const sheet_store_ops sql_sheet_ops = {
	.checkpoint = sql_sheet_checkpoint,
	.load = sql_sheet_load,
	.save = sql_sheet_save,
};

static error_code sql_backup(store *s, const char *path, char **abs,
			     uint64_t *events);

static const store_ops sqlite_ops = {
	.kind = "sqlite",
	.free = sql_free,
	.append = sql_append,
	.read_stream = sql_read_stream,
	.read_all = sql_read_all,
	.stream_state = sql_stream_state,
	.head = sql_head,
	.stream_count = sql_stream_count,
	.streams = sql_streams,
	.begin = sql_begin,
	.commit = sql_commit,
	.rollback = sql_rollback,
	.others_waiting = sql_others_waiting,
	.poll = sql_poll,
	.backup = sql_backup,
	.sheet = &sql_sheet_ops,
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

/* The primitives of store_sql's schema decision. */

static error_code sql_schema_read(store *s, store_sql_found *found,
				  int64_t *version, char *why, size_t why_len)
{
	int64_t app = 0, objects = 0;
	*version = 0;
	if (!read_header(((sql_store *)s)->db, &app, version, &objects, why,
			 why_len))
		return ERR_STORAGE;
	*found = STORE_SQL_FOUND_OURS;
	if (app == 0 && *version == 0 && objects == 0) {
		*found = STORE_SQL_FOUND_EMPTY;
	} else if (app != APPLICATION_ID) {
		snprintf(why, why_len,
			 "a SQLite database of another program, not a simplecqrs ledger");
		*found = STORE_SQL_FOUND_OTHER;
	} else if (*version < 1) {
		snprintf(why, why_len, "a damaged ledger (schema version %lld)",
			 (long long)*version);
		*found = STORE_SQL_FOUND_OTHER;
	}
	return ERR_OK;
}

/* A new (or empty) file: it is made in WAL mode, under the write lock. */
static error_code sql_schema_lock(store *s, char *why, size_t why_len)
{
	sqlite3 *db = ((sql_store *)s)->db;
	if (!exec_sql(db, "PRAGMA page_size = 16384") ||
	    !exec_sql(db, "PRAGMA journal_mode = WAL") ||
	    !exec_sql(db, "BEGIN IMMEDIATE")) {
		say_why(db, why, why_len);
		return ERR_STORAGE;
	}
	return ERR_OK;
}

static error_code sql_schema_create(store *s, char *why, size_t why_len)
{
	sqlite3 *db = ((sql_store *)s)->db;
	char stamp[96];
	snprintf(stamp, sizeof stamp,
		 "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 APPLICATION_ID, SCHEMA_VERSION);
	if (!exec_sql(db, schema) || !exec_sql(db, stamp) ||
	    !exec_sql(db, "COMMIT")) {
		say_why(db, why, why_len);	/* schema_end rolls back */
		return ERR_STORAGE;
	}
	return ERR_OK;
}

/* Why the 1->2 upgrade failed, in words: the account whose events add up
 * below 0 (the kept balance's CHECK), else SQLite's own message. */
static void upgrade_why(sqlite3 *db, char *why, size_t why_len)
{
	say_why(db, why, why_len);	/* before anything else runs */
	if (strstr(why, "CHECK constraint failed") == NULL)
		return;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT s.name, sum(CASE e.type WHEN 1 THEN "
			       "e.amount ELSE -e.amount END) AS b FROM event_log e "
			       "JOIN streams s ON s.id = e.stream GROUP BY e.stream "
			       "HAVING b < 0 ORDER BY s.name LIMIT 1", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(why, why_len, "account %.64s's events add up to a "
			 "balance of %lld, below 0 (a damaged ledger)",
			 (const char *)sqlite3_column_text(st, 0),
			 (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
}

static error_code sql_schema_upgrade(store *s, int64_t from, char *why,
				     size_t why_len)
{
	sqlite3 *db = ((sql_store *)s)->db;
	char stamp[64];
	snprintf(stamp, sizeof stamp, "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (from != 1 || !exec_sql(db, upgrade_1_2) || !exec_sql(db, stamp) ||
	    !exec_sql(db, "COMMIT")) {
		if (from != 1)
			snprintf(why, why_len, "no upgrade from schema version %lld",
				 (long long)from);
		else
			upgrade_why(db, why, why_len);	/* schema_end rolls back */
		return ERR_STORAGE;
	}
	return ERR_OK;
}

static error_code sql_schema_end(store *s, bool locked, store_sql_outcome how,
				 char *why, size_t why_len)
{
	sqlite3 *db = ((sql_store *)s)->db;
	if (locked && how != STORE_SQL_CREATED && how != STORE_SQL_UPGRADED &&
	    !sqlite3_get_autocommit(db))
		exec_sql(db, "ROLLBACK");	/* schema_lock's transaction */
	if (how != STORE_SQL_USED && how != STORE_SQL_UPGRADED)
		return ERR_OK;
	int64_t wal = 0;
	if (!query_int(db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", &wal) ||
	    (!wal && !exec_sql(db, "PRAGMA journal_mode = WAL"))) {
		say_why(db, why, why_len);
		return ERR_STORAGE;
	}
	return ERR_OK;
}

static const store_sql_prims sqlite_prims = {
	.head = sql_file_head,
	.stream_load = sql_stream_load,
	.stream_add = sql_stream_add,
	.event_add = sql_event_add,
	.events_after = sql_events_after,
	.flush = sql_flush,
	.checkpoint = sql_checkpoint_row,
	.checkpoint_move = sql_checkpoint_move,
	.balances = sql_balances,
	.snapshot_begin = sql_snapshot_begin,
	.snapshot_end = sql_snapshot_end,
	.schema_version = SCHEMA_VERSION,
	.schema_read = sql_schema_read,
	.schema_lock = sql_schema_lock,
	.schema_create = sql_schema_create,
	.schema_upgrade = sql_schema_upgrade,
	.schema_end = sql_schema_end,
};

/* Checks that the file is this program's ledger, or empty; on a new file
 * writes the schema (and sets *made). */
static bool check_schema(sql_store *q, bool *made, char *why, size_t why_len)
{
	return store_sql_schema(&q->base, &sqlite_prims, made, why, why_len);
}

/* path made absolute, to open and to show: its folder resolved with
 * realpath, its last component as given (a symlink stays one, and
 * "file:x.db" stays a file name: an absolute path is never a URI name).
 * NULL, with why, when there is no such folder. */
static char *absolute_path(const char *path, char *why, size_t why_len)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		snprintf(why, why_len, "it names a folder, not a file");
		return NULL;
	}
	char *dir = slash == NULL ? xstrdup(".")
		    : slash == path ? xstrdup("/")
		    : xstrndup(path, (size_t)(slash - path));
	char *real = realpath(dir, NULL);
	int err = errno;
	free(dir);
	if (real == NULL) {
		snprintf(why, why_len, "cannot find its folder: %s", strerror(err));
		return NULL;
	}
	size_t lr = strlen(real), lb = strlen(base);
	bool root = lr == 1;	/* "/": no second slash */
	char *abs = xmalloc(lr + lb + 2);
	memcpy(abs, real, lr);
	abs[lr - root] = '/';
	memcpy(abs + lr + 1 - root, base, lb + 1);
	free(real);
	return abs;
}

static const char *file_kind(mode_t mode)
{
	return S_ISCHR(mode) ? "a device" : S_ISBLK(mode) ? "a block device"
	     : S_ISFIFO(mode) ? "a FIFO (named pipe)"
	     : S_ISSOCK(mode) ? "a socket" : "not a regular file";
}

/* A ledger renamed or removed while a shell had it open, and that shell
 * killed before it could put its last events into the file, leaves them in
 * PATH-wal. A new ledger made under PATH would have SQLite delete that log:
 * acknowledged events lost. (An empty one, left by a shell that ended
 * well, holds nothing.) */
static bool stranded_wal(const char *path)
{
	char wal[PATH_MAX + 8];
	struct stat st;
	return snprintf(wal, sizeof wal, "%s-wal", path) < (int)sizeof wal &&
	       lstat(wal, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > 0);
}

/* Checks that path is a ledger's kind of file, or creates it 0600 if it is
 * not there (*created says so). Only stat and an exclusive create: nothing
 * is opened that could block (a FIFO) or be made beside it (a journal). */
static bool prepare_file(const char *path, bool *created, char *why,
			 size_t why_len)
{
	struct stat st;
	*created = false;
	for (int tries = 0; stat(path, &st) != 0; tries++) {
		if (errno != ENOENT) {
			snprintf(why, why_len, "cannot use it: %s", strerror(errno));
			return false;
		}
		if (stranded_wal(path)) {
			snprintf(why, why_len, "it is not there, but its write-ahead "
				 "log %s-wal is, holding events of a ledger that had "
				 "this name (renamed or removed while a shell had it "
				 "open): put that ledger back under this name and open "
				 "it, so that they go into it; nothing was changed",
				 path);
			return false;
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			*created = true;
			return true;
		}
		if (errno != EEXIST) {
			snprintf(why, why_len, "cannot create it: %s", strerror(errno));
			return false;
		}
		/* another shell made it just now, or it is a symlink to nothing */
		if (tries > 0) {
			snprintf(why, why_len, "it is a symbolic link to a file "
				 "that is not there");
			return false;
		}
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, why_len, "it is a folder");
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "it is %s; a ledger is a regular file",
			 file_kind(st.st_mode));
		return false;
	}
	if (st.st_nlink > 1) {
		snprintf(why, why_len, "the file has %ju names (hard links); "
			 "SQLite keeps a write-ahead log and lock per name, so two "
			 "shells on two names would lose events: remove the other "
			 "links, or work on a copy made by backup",
			 (uintmax_t)st.st_nlink);
		return false;
	}
	return true;
}

/* SQLite's lock bytes, fixed by its file format (every version must agree
 * on them): a connection in WAL mode holds a read lock on the database
 * file's shared range, and one on the -shm file's "dead man switch" byte,
 * for as long as it is open. */
#define SQLITE_SHARED_FIRST (0x40000000 + 2)
#define SQLITE_SHARED_SIZE 510
#define SQLITE_SHM_DMS 128

/* Whether another process holds a read lock on bytes [start, start + len)
 * of path: 1 yes; 0 no, or no such file; -1 cannot tell. */
static int read_locked(const char *path, off_t start, off_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = start, .l_len = len };
	int rc = fcntl(fd, F_GETLK, &fl);
	close(fd);
	return rc != 0 ? -1 : fl.l_type != F_UNLCK;
}

/* Another process has the file open as a ledger, but not through this
 * name's -shm file: it opened the file by another name, which since became
 * this one (renamed while open). Its latest events may be in its own WAL,
 * which this name cannot see, and both would write. A process opening by
 * this very name holds the first lock a moment before the second, so only
 * what lasts half a second counts. */
static bool open_by_another_name(const char *abs)
{
	/* SQLite names the -shm file after the path with symlinks resolved */
	char *path = realpath(abs, NULL);
	if (open_ledgers > 0 || path == NULL) {
		free(path);
		return false;
	}
	char *shm = xmalloc(strlen(path) + 5);
	strcpy(stpcpy(shm, path), "-shm");
	bool other = true;
	for (int tries = 0; other && tries < 50; tries++) {
		if (tries > 0)
			sqlite3_sleep(10);
		other = read_locked(path, SQLITE_SHARED_FIRST, SQLITE_SHARED_SIZE) == 1 &&
			read_locked(shm, SQLITE_SHM_DMS, 1) == 0;
	}
	free(shm);
	free(path);
	return other;
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
	static const char *const suffix[] = { "-wal", "-shm", "-journal", "" };
	char *name = xmalloc(strlen(path) + 9);
	for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
		strcpy(stpcpy(name, path), suffix[i]);
		unlink(name);
	}
	free(name);
}

/* Opens db on the absolute path abs, a file prepare_file checked. */
static bool open_db(sql_store *q, const char *abs, bool *made, char *why,
		    size_t why_len)
{
	/* no URI names, no shared cache: abs is a file name, nothing more */
	int rc = sqlite3_open_v2(abs, &q->db, SQLITE_OPEN_READWRITE |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (q->db)
			say_why(q->db, why, why_len);
		else
			snprintf(why, why_len, "out of memory");
		return false;
	}
	/* before anything else, so that every statement waits for a busy
	 * writer rather than failing */
	sqlite3_busy_handler(q->db, on_busy, q);
	if (sqlite3_db_readonly(q->db, "main") == 1) {
		snprintf(why, why_len, "the file is read-only");
		return false;
	}
	/* Shells opening a new file together can meet where SQLite will not
	 * wait (one reading while another switches it to WAL): try again. */
	for (int tries = 0; !check_schema(q, made, why, why_len); tries++) {
		if (!is_busy(sqlite3_errcode(q->db)) ||
		    tries * 10 >= BUSY_TIMEOUT_MS)
			return false;
		sqlite3_sleep(10);
	}
	if (!exec_sql(q->db, "PRAGMA synchronous = FULL") ||
	    !exec_sql(q->db, "PRAGMA cache_size = -65536")) {
		say_why(q->db, why, why_len);
		return false;
	}
	for (int i = 0; i < Q_COUNT; i++) {
		if (sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &q->q[i], NULL) != SQLITE_OK) {
			say_why(q->db, why, why_len);
			return false;
		}
	}
	return true;
}

store *store_sqlite_open(const char *path, char *why, size_t why_len)
{
	if (path[0] == '\0') {
		snprintf(why, why_len, "no file named; use sqlite:PATH, as in sqlite:ledger.db");
		return NULL;
	}
	if (path[0] == '/' && path[1] == '/') {
		snprintf(why, why_len, "sqlite:PATH takes a file name, not a URL: "
			 "write sqlite:x.db for x.db in this folder, or "
			 "sqlite:/x.db for /x.db");
		return NULL;
	}
	char *abs = absolute_path(path, why, why_len);
	bool created, made = false;
	if (abs == NULL)
		return NULL;
	if (!prepare_file(abs, &created, why, why_len)) {
		free(abs);
		return NULL;
	}
	if (!created && open_by_another_name(abs)) {
		snprintf(why, why_len, "another program has this file open as a "
			 "ledger by another name (was it renamed while open?); its "
			 "latest events may not be in it yet: open it again when "
			 "that program has ended");
		free(abs);
		return NULL;
	}
	sql_store *q = xcalloc(1, sizeof *q);
	q->base.ops = &sqlite_ops;
	q->names = idmap_new();
	q->writer = store_sql_writer_new();
	q->turn_fd = q->shm_fd = -1;
	if (!open_db(q, abs, &made, why, why_len))
		goto fail;
	turns_open(q, abs);
	if (one_int(q, Q_DATA_VERSION, &q->data_version,
		    "cannot read the data version", NULL) != ERR_OK) {
		snprintf(why, why_len, "%s", q->base.errmsg);
		goto fail;
	}
	q->base.location = abs;
	q->base.created = made;
	open_ledgers++;
	return &q->base;
fail:
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(q->q[i]);
	sqlite3_close(q->db);
	turns_close(q);
	idmap_free(q->names);
	store_sql_writer_free(q->writer);
	free(q);
	/* Leave nothing behind that we made, unless another shell opening
	 * the same new file has written its ledger into it meanwhile. */
	if (created && still_empty(abs))
		remove_files(abs);
	free(abs);
	return NULL;
}

/* ---- backup: a consistent copy in a new ledger file ---- */

/* The backup's own connection: target made (0600, must not exist) and
 * opened. ERR_BACKUP_FAILED, with s's errmsg, when it cannot be. */
static error_code backup_target(store *s, const char *path, char **abs,
				sqlite3 **db)
{
	char why[200];
	*db = NULL;
	if ((*abs = absolute_path(path, why, sizeof why)) == NULL) {
		store_base_fail(s, "cannot back up to %.80s: %s", path, why);
		return ERR_BACKUP_FAILED;
	}
	int fd = open(*abs, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			store_base_fail(s, "%.160s already exists (a backup never "
					"overwrites a file)", *abs);
		else
			store_base_fail(s, "cannot create %.160s: %s", *abs,
					strerror(errno));
		free(*abs);
		*abs = NULL;
		return ERR_BACKUP_FAILED;
	}
	close(fd);
	if (sqlite3_open_v2(*abs, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		store_base_fail(s, "cannot open %.160s: %s", *abs,
				*db ? sqlite3_errmsg(*db) : "out of memory");
		return ERR_BACKUP_FAILED;
	}
	return ERR_OK;
}

/* The sqlite store's own file, by SQLite's online backup: page by page
 * from one read snapshot, which in WAL mode never holds up a writer. */
static error_code online_backup(sql_store *q, sqlite3 *dst, uint64_t *events)
{
	int64_t n = 0;
	/* the snapshot begins at the count and lasts to the last page */
	if (run(q, Q_BEGIN_READ) != SQLITE_DONE)
		return db_fail(q, "cannot read the ledger for a backup");
	error_code rc = one_int(q, Q_EVENT_COUNT, &n, "cannot count the events",
				NULL);
	if (rc != ERR_OK) {
		run(q, Q_ROLLBACK);
		return rc;
	}
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", q->db, "main");
	int step = SQLITE_ERROR;
	if (b) {
		while ((step = sqlite3_backup_step(b, BACKUP_STEP_PAGES)) == SQLITE_OK ||
		       is_busy(step) || step == SQLITE_LOCKED)
			if (step != SQLITE_OK)
				sqlite3_sleep(10);
		sqlite3_backup_finish(b);
	}
	run(q, Q_COMMIT);
	if (step != SQLITE_DONE) {
		store_base_fail(&q->base, "writing the backup failed: %s",
				sqlite3_errmsg(dst));
		return ERR_BACKUP_FAILED;
	}
	*events = (uint64_t)n;
	return ERR_OK;
}

/* Closes a backup's connection; a backup that failed (or fails to close)
 * leaves nothing at *abs. */
static error_code backup_close(store *s, sqlite3 *db, error_code rc, char **abs)
{
	if (db && sqlite3_close(db) != SQLITE_OK && rc == ERR_OK) {
		store_base_fail(s, "closing the backup failed: %s",
				sqlite3_errmsg(db));
		rc = ERR_BACKUP_FAILED;
	}
	if (rc != ERR_OK && *abs) {	/* a half-written backup goes */
		remove_files(*abs);
		free(*abs);
		*abs = NULL;
	}
	return rc;
}

static error_code sql_backup(store *s, const char *path, char **abs,
			     uint64_t *events)
{
	sqlite3 *db;
	*events = 0;
	error_code rc = backup_target(s, path, abs, &db);
	if (rc == ERR_OK)
		rc = online_backup((sql_store *)s, db, events);
	return backup_close(s, db, rc, abs);
}

/* ---- a new ledger file, row by row (store_backup.c's generic copy) ---- */

struct store_sqlite_file {
	store *report;		/* whose errmsg says why a write failed */
	sqlite3 *db;
	sqlite3_stmt *event, *stream, *balance;
	char *abs;
};

static error_code file_fail(store_sqlite_file *f)
{
	store_base_fail(f->report, "writing the backup failed: %s",
			sqlite3_errmsg(f->db));
	return ERR_BACKUP_FAILED;
}

error_code store_sqlite_file_new(store *report, const char *path,
				 store_sqlite_file **out)
{
	store_sqlite_file *f = xcalloc(1, sizeof *f);
	f->report = report;
	*out = NULL;
	error_code rc = backup_target(report, path, &f->abs, &f->db);
	char stamp[96];
	snprintf(stamp, sizeof stamp,
		 "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 APPLICATION_ID, SCHEMA_VERSION);
	if (rc == ERR_OK &&
	    (!exec_sql(f->db, "PRAGMA synchronous = FULL; BEGIN") ||
	     !exec_sql(f->db, schema) || !exec_sql(f->db, stamp) ||
	     sqlite3_prepare_v2(f->db, "INSERT INTO event_log (position, "
				"stream, version, type, amount, time) VALUES "
				"(?1, ?2, ?3, ?4, ?5, ?6)", -1, &f->event,
				NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(f->db, "INSERT INTO streams (id, name, version, "
				"balance, balance_version) VALUES (?1, ?2, ?3, "
				"?4, ?3)", -1, &f->stream,
				NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(f->db, sql[Q_BALANCE_PUT], -1, &f->balance,
				NULL) != SQLITE_OK))
		rc = file_fail(f);
	if (rc != ERR_OK) {
		store_sqlite_file_abort(f);
		return rc;
	}
	*out = f;
	return ERR_OK;
}

error_code store_sqlite_file_event(store_sqlite_file *f, const store_event *ev,
				   int64_t stream_id)
{
	sqlite3_stmt *st = f->event;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ev->position);
	sqlite3_bind_int64(st, 2, stream_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ev->version);
	sqlite3_bind_int(st, 4, ev->type);
	sqlite3_bind_int64(st, 5, ev->amount);
	sqlite3_bind_int64(st, 6, ev->time_ms);
	return sqlite3_step(st) == SQLITE_DONE ? ERR_OK : file_fail(f);
}

error_code store_sqlite_file_stream(store_sqlite_file *f, int64_t id,
				    const char *name, uint64_t version,
				    int64_t balance)
{
	sqlite3_stmt *st = f->stream;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)version);
	sqlite3_bind_int64(st, 4, balance);
	return sqlite3_step(st) == SQLITE_DONE ? ERR_OK : file_fail(f);
}

error_code store_sqlite_file_balance(store_sqlite_file *f, const char *account,
				     int64_t balance)
{
	sqlite3_stmt *st = f->balance;
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, balance);
	return sqlite3_step(st) == SQLITE_DONE ? ERR_OK : file_fail(f);
}

/* The statements go, then the connection: closed (and on failure its file
 * removed) by backup_close. */
static error_code file_end(store_sqlite_file *f, error_code rc, char **abs)
{
	sqlite3_finalize(f->event);
	sqlite3_finalize(f->stream);
	sqlite3_finalize(f->balance);
	*abs = f->abs;
	rc = backup_close(f->report, f->db, rc, abs);
	free(f);
	return rc;
}

error_code store_sqlite_file_finish(store_sqlite_file *f, uint64_t checkpoint,
				    char **abs)
{
	char move[80];
	snprintf(move, sizeof move, "UPDATE checkpoint SET position = %llu",
		 (unsigned long long)checkpoint);
	error_code rc = ERR_OK;
	if (!exec_sql(f->db, move) || !exec_sql(f->db, "COMMIT"))
		rc = file_fail(f);
	return file_end(f, rc, abs);
}

void store_sqlite_file_abort(store_sqlite_file *f)
{
	char *abs;
	file_end(f, ERR_BACKUP_FAILED, &abs);
}
