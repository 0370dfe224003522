/* store_sql.h — the SQL backends' algorithms, over their primitives
 * (private to src/).
 *
 * store_sql.c holds, once, what the sqlite and postgresql stores do alike:
 * an append with its expected-version claims, the guarded save of the
 * balance sheet, its load from one snapshot, and the schema decision at
 * open. A backend fills a const store_sql_prims with its statements (the
 * SQL text stays in the backend) and calls these from its store_ops.
 *
 * Every primitive returns ERR_OK or ERR_STORAGE with s->errmsg set (the
 * schema ones: with why set), unless it says otherwise; a read outside a
 * group may also give ERR_BUSY (a lock waited for too long). The algorithms
 * never open, commit or roll back a write group: an append or a save runs
 * inside the caller's group; ERR_CONFLICT leaves that group as it was, and
 * on ERR_STORAGE the caller rolls the whole group back. */
#ifndef SIMPLECQRS_STORE_SQL_H
#define SIMPLECQRS_STORE_SQL_H

#include "store_impl.h"

/* The most events one append takes (a transfer's two). */
#define STORE_SQL_APPEND_MAX 2

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
} store_sql_outcome;

typedef struct store_sql_prims {
	/* ---- an append's claims: a stream's key is the backend's number
	 * for it (0: none, or the backend names streams by name) ---- */

	/* NULL in a backend that cannot tell cheaply. Else *key is the
	 * stream's number, 0 if it has none yet: the claims below then
	 * need not be tried to know that they would conflict. */
	error_code (*stream_find)(store *s, const store_new_event *ev,
				  int64_t *key);
	/* Moves ev's stream from ev->expected_version to the next (from 0:
	 * makes it, at version 1); *claimed false, with nothing written, if
	 * it is not at that version. *key comes from stream_find (0 without
	 * one); a stream made here leaves its number in it. */
	error_code (*stream_claim)(store *s, const store_new_event *ev,
				   int64_t *key, bool *claimed);
	/* NULL, or: a claim on a stream that has key > 0 failed; say why.
	 * ERR_CONFLICT (another writer won), or ERR_STORAGE if the stream's
	 * row disagrees with its events (a damaged ledger). */
	error_code (*stream_check)(store *s, const store_new_event *ev,
				   int64_t key);
	/* Puts back stream_claim's claim: the version steps back, a new
	 * stream goes. */
	error_code (*stream_unclaim)(store *s, const store_new_event *ev,
				     int64_t key);
	/* Writes ev, at ev->expected_version + 1, after its claim; *position
	 * is the position it got. */
	error_code (*event_add)(store *s, const store_new_event *ev,
				int64_t key, int64_t time_ms,
				uint64_t *position);

	/* ---- the balance sheet ---- */

	/* The kept checkpoint (what sheet_checkpoint answers). */
	error_code (*checkpoint)(store *s, uint64_t *checkpoint);
	/* Moves it from `from` to `to`; *moved false (nothing written) if
	 * it is not at `from`. */
	error_code (*checkpoint_move)(store *s, uint64_t from, uint64_t to,
				      bool *moved);
	error_code (*balances_clear)(store *s);
	error_code (*balance_put)(store *s, const sheet_store_row *row);
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
	/* Ends what schema_read and schema_lock opened (locked: the lock
	 * was taken); for USED and CREATED, anything that can still fail
	 * (a commit): ERR_OK or ERR_STORAGE with why. */
	error_code (*schema_end)(store *s, bool locked, store_sql_outcome how,
				 char *why, size_t why_len);
} store_sql_prims;

/* store_ops.append, inside the caller's group: claims every stream's
 * version, then writes the events. ERR_CONFLICT: a stream was not at its
 * expected version, and every claim this append made is put back. */
error_code store_sql_append(store *s, const store_sql_prims *p,
			    const store_new_event *evs, size_t n,
			    int64_t time_ms, uint64_t *last_position);

/* store_ops.sheet_save, inside the caller's group: moves the checkpoint
 * from `from` to `to` (ERR_CONFLICT, nothing written, if it is not at
 * `from`), empties the sheet with replace, and puts the rows. */
error_code store_sql_sheet_save(store *s, const store_sql_prims *p,
				uint64_t from, uint64_t to,
				const sheet_store_row *rows, size_t n,
				bool replace);

/* store_ops.sheet_load: the checkpoint and the rows from one snapshot, the
 * open group's or a read transaction's of its own. */
error_code store_sql_sheet_load(store *s, const store_sql_prims *p,
				uint64_t *checkpoint, sheet_store_row_fn fn,
				void *ctx);

/* At open: a new empty database gets the schema (*made true); a ledger at
 * a version this build knows is used; a newer one, or a database not ours,
 * is refused and left as it was. false: why says why. */
bool store_sql_schema(store *s, const store_sql_prims *p, bool *made,
		      char *why, size_t why_len);

#endif
