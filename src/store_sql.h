/* store_sql.h — the SQL backends' algorithms, over their primitives
 * (private to src/).
 *
 * store_sql.c holds, once, what the sqlite and postgresql stores do alike:
 * the writer's table of streams that the write lock keeps true (so an
 * append checks its expected versions in memory and each stream's row is
 * written once a group), the sheet's rows coalesced per group, its load
 * from one snapshot, and the schema decision (and upgrade) at open. A
 * backend fills a const store_sql_prims with its statements (the SQL text
 * stays in the backend) and calls these from its store_ops.
 *
 * Every primitive returns ERR_OK or ERR_STORAGE with s->errmsg set (the
 * schema ones: with why set), unless it says otherwise; a read outside a
 * group may also give ERR_BUSY (a lock waited for too long). The algorithms
 * never open or commit a write group: an append or a save runs inside the
 * caller's group; ERR_CONFLICT leaves that group as it was, and on
 * ERR_STORAGE the caller rolls the whole group back. A flush that fails
 * (the commit's, or one inside a read: the sheet's load) breaks the
 * group: each later write of it, and its commit, fails with that reason,
 * so the caller drops it as after any failed write. */
#ifndef SIMPLECQRS_STORE_SQL_H
#define SIMPLECQRS_STORE_SQL_H

#include "store_impl.h"

/* The most events one append takes (a transfer's two). */
#define STORE_SQL_APPEND_MAX 2

/* The writer's table (store_sql.c): the streams with a row that this
 * shell's groups have read or written since the table last forgot (a
 * rollback, or too many events of other shells), or on a small ledger
 * every stream; each with its key, version and balance, kept true by the
 * write lock and caught up at group start. A stream asked about that has
 * no row is not kept. A backend makes one at open and frees it with
 * itself. */
typedef struct store_sql_writer store_sql_writer;
store_sql_writer *store_sql_writer_new(void);
void store_sql_writer_free(store_sql_writer *w);

/* A stream as the writer's table and the streams rows hold it: its key
 * (the backend's number for it, or 0 where streams go by name), version
 * (0: none yet) and balance, the aggregate's snapshot. */
typedef struct store_sql_stream {
	const char *name;
	size_t len;
	int64_t key;
	uint64_t version;
	int64_t balance;
	bool stored;		/* it has a streams row (else flush adds one) */
} store_sql_stream;

/* One event as the append hands it to the backend: its position and
 * version are decided (the write lock holds them). */
typedef struct store_sql_event {
	const store_sql_stream *stream;
	uint64_t position;
	uint64_t version;
	event_type type;
	int64_t amount;
	int64_t time_ms;
} store_sql_event;

/* What the sheet's coalesced rows look like to a backend's flush. */
typedef struct store_sql_sheet_flush {
	bool replace;		/* empty the kept sheet first (rebuild) */
	uint64_t checkpoint;	/* where the group's last save left it */
	const sheet_store_row *rows;	/* one per account, the last value */
	size_t n;
} store_sql_sheet_flush;
/* What the schema reader found. */
typedef enum store_sql_found {
	STORE_SQL_FOUND_EMPTY,	/* a new, empty database: make the schema */
	STORE_SQL_FOUND_OURS,	/* a ledger, at *version */
	STORE_SQL_FOUND_OTHER,	/* not ours, or damaged: why says so */
} store_sql_found;

/* How the schema decision ended, for schema_end. */
typedef enum store_sql_outcome {
	STORE_SQL_FAILED,	/* a primitive failed; why says so */
	STORE_SQL_REFUSED,	/* not to be used; why says so */
	STORE_SQL_USED,		/* ours, at a version this build knows */
	STORE_SQL_CREATED,	/* schema_create made it */
	STORE_SQL_UPGRADED,	/* schema_upgrade brought it up to date */
} store_sql_outcome;

typedef struct store_sql_prims {
	/* ---- the write group's primitives ---- */

	/* The last position, read under the write lock. */
	error_code (*head)(store *s, uint64_t *head);
	/* The stream's row: st->name and st->len are set; fills key, version
	 * and balance (all 0, stored false, when it has no row). */
	error_code (*stream_load)(store *s, store_sql_stream *st);
	/* NULL in a backend whose flush writes new streams' rows; else makes
	 * the row of a new stream now (at version 1, balance 0 taken at
	 * version 1: flush writes the real ones) and sets st->key, stored true. */
	error_code (*stream_add)(store *s, store_sql_stream *st);
	/* Optional (NULL: each stream is read when first asked): calls fn per
	 * stream row, each checked as stream_load checks one, so that the
	 * table knows every stream and a name it lacks has no row (asked of
	 * a small ledger only, at group start). */
	error_code (*streams_all)(store *s,
				  int (*fn)(void *ctx, const store_sql_stream *st),
				  void *ctx);
	/* Writes (or, in a backend that sends them in bulk, queues) one event
	 * whose position and version are decided. */
	error_code (*event_add)(store *s, const store_sql_event *ev);
	/* Calls fn(ctx, key-or-0, name, position, version, type, amount) for
	 * each event with position > after, in position order: the events
	 * other shells wrote between this shell's groups. name may be NULL
	 * when key names the stream. type is the row's as read (a damaged
	 * ledger's may be neither credit nor debit: 0 for one whose type has
	 * no number). A non-zero return stops the read. */
	error_code (*events_after)(store *s, uint64_t after,
				   int (*fn)(void *ctx, int64_t key,
					     const char *name, uint64_t position,
					     uint64_t version, event_type type,
					     int64_t amount),
				   void *ctx);
	/* Writes the group's queued work before its commit: the streams that
	 * moved (their version and balance; a stream not stored gets its
	 * row), and the sheet's coalesced rows when sheet is not NULL. Events
	 * a backend queued go first. */
	error_code (*flush)(store *s, const store_sql_stream *const *streams,
			    size_t n, const store_sql_sheet_flush *sheet);

	/* The most events of other shells a group start reads to catch the
	 * table up; past it the table forgets, and streams are read again
	 * when asked. 0: store_sql's default (4096); a backend whose reads
	 * are round trips catches up further. */
	uint64_t catchup_max;

	/* ---- the balance sheet ---- */

	/* The kept checkpoint (what sheet_checkpoint answers). */
	error_code (*checkpoint)(store *s, uint64_t *checkpoint);
	/* Moves it from `from` to `to`; *moved false (nothing written) if
	 * it is not at `from`. */
	error_code (*checkpoint_move)(store *s, uint64_t from, uint64_t to,
				      bool *moved);
	/* Calls fn per kept row until the rows end or fn says stop. */
	error_code (*balances)(store *s, sheet_store_row_fn fn, void *ctx);
	/* A read snapshot for a load outside any group: begin, and end with
	 * the load's result rc, returning the load's answer. */
	error_code (*snapshot_begin)(store *s);
	error_code (*snapshot_end)(store *s, error_code rc);

	/* ---- the schema, at open; each sets why on failure ---- */

	/* The schema version this build writes. */
	int schema_version;
	/* Reads what the database holds (in a transaction of its own, or in
	 * schema_lock's); *version is set for STORE_SQL_FOUND_OURS. */
	error_code (*schema_read)(store *s, store_sql_found *found,
				  int64_t *version, char *why, size_t why_len);
	/* Takes the lock under which a new database is made: two programs
	 * opening it together make the schema once. */
	error_code (*schema_lock)(store *s, char *why, size_t why_len);
	/* Makes the schema, under schema_lock. */
	error_code (*schema_create)(store *s, char *why, size_t why_len);
	/* Brings a ledger at schema version `from` (< schema_version) to
	 * schema_version under schema_lock, in the lock's one transaction,
	 * which it commits (as schema_create does): nothing is lost. */
	error_code (*schema_upgrade)(store *s, int64_t from, char *why,
				     size_t why_len);
	/* Ends what schema_read and schema_lock opened (locked: the lock
	 * was taken); for USED, CREATED and UPGRADED, anything that can still fail
	 * (a commit): ERR_OK or ERR_STORAGE with why. */
	error_code (*schema_end)(store *s, bool locked, store_sql_outcome how,
				 char *why, size_t why_len);
} store_sql_prims;

/* ---- the write group, as the backend's ops run it ---- */

/* After the backend took the write lock (opened the group's transaction):
 * one look at the head; if other shells wrote since this one's last group,
 * the table takes up their events (or, when they are many, forgets what it
 * knew: each stream is read again from its row when next asked). From here
 * to the commit the table is the truth, and an append asks nothing. */
error_code store_sql_begun(store *s, const store_sql_prims *p,
			   store_sql_writer *w);
/* Before the backend's COMMIT: writes what the group queued (flush). A
 * backend that queues events calls it before a read in the group, too.
 * Once it failed in a group, it (and every append and sheet save) fails
 * again with that reason until the group is rolled back. */
error_code store_sql_flush(store *s, const store_sql_prims *p,
			   store_sql_writer *w);
/* After the COMMIT worked, or after a rollback (the table forgets what the
 * group changed: the rows are as they were before it). */
void store_sql_committed(store_sql_writer *w);
void store_sql_rolled_back(store_sql_writer *w);

/* store_ops.append, inside the caller's group: each stream's version
 * checked against the table (ERR_CONFLICT, nothing written, if it is not
 * the expected one), positions and versions decided, the events written
 * (event_add), the streams' new versions and balances kept for flush. */
error_code store_sql_append(store *s, const store_sql_prims *p,
			    store_sql_writer *w, const store_new_event *evs,
			    size_t n, int64_t time_ms, uint64_t *last_position);

/* store_ops.stream_state: from the table in a group, else the row. */
error_code store_sql_stream_state(store *s, const store_sql_prims *p,
				  store_sql_writer *w, const char *stream,
				  size_t len, uint32_t *key, uint64_t *version,
				  int64_t *balance);

/* store_ops.head: the table's head in a group (a backend that queues
 * events has not written them yet), else the backend's. */
error_code store_sql_head(store *s, const store_sql_prims *p,
			  store_sql_writer *w, uint64_t *head);

/* In a group, whether the table knows the stream, and its version: the
 * stream's events end there (a backend that queues events answers a read
 * past it without writing the queue or asking the server); *unflushed:
 * it moved since the last flush (else its events are all written). */
bool store_sql_known(const store_sql_writer *w, const char *stream,
		     size_t len, uint64_t *version, bool *unflushed);

/* store_ops.sheet_save, inside the caller's group: the first save of a
 * group moves the checkpoint from `from` to `to` (ERR_CONFLICT, nothing
 * written, if it is not at `from`), and holds the row lock that move took;
 * later ones move it in the table only. The rows are kept, one per
 * account, and written once, by flush. */
error_code store_sql_sheet_save(store *s, const store_sql_prims *p,
				store_sql_writer *w, uint64_t from, uint64_t to,
				const sheet_store_row *rows, size_t n,
				bool replace);

/* store_ops.sheet_checkpoint: the group's, or the kept one. */
error_code store_sql_sheet_checkpoint(store *s, const store_sql_prims *p,
				      store_sql_writer *w, uint64_t *checkpoint);

/* store_ops.sheet_load: the checkpoint and the rows from one snapshot, the
 * open group's (its queued rows written first: if that write fails, the
 * group is broken, see store_sql_flush) or a read transaction's of its
 * own. */
error_code store_sql_sheet_load(store *s, const store_sql_prims *p,
				store_sql_writer *w, uint64_t *checkpoint,
				sheet_store_row_fn fn, void *ctx);

/* At open: a new empty database gets the schema (*made true); a ledger at
 * the version this build writes is used; an older one is upgraded in place,
 * in one transaction; a newer one, or a database not ours, is refused and
 * left as it was. false: why says why. */
bool store_sql_schema(store *s, const store_sql_prims *p, bool *made,
		      char *why, size_t why_len);

#endif
