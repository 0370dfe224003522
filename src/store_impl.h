/* store_impl.h — what a store backend implements (private to src/).
 *
 * A backend embeds `struct store` as its first member and fills a const
 * store_ops (and, when it keeps the balance sheet, a sheet_store_ops);
 * store.c forwards each public call through them, the way SQLite's VFS or
 * redis's dictType work. Calls go one way: store.c and sheet_store.c call
 * the backends, and a backend calls only store_base.c (its failure
 * message, the wait hook) and secret.c below it, never back up. */
#ifndef SIMPLECQRS_STORE_IMPL_H
#define SIMPLECQRS_STORE_IMPL_H

#include "simplecqrs/sheet_store.h"
#include "simplecqrs/store.h"

/* What a store that keeps the balance sheet implements; sheet_store.c
 * checks what load hands back and keeps the write group around save. */
typedef struct sheet_store_ops {
	error_code (*checkpoint)(store *s, uint64_t *checkpoint);
	/* the checkpoint and the rows of one snapshot */
	error_code (*load)(store *s, uint64_t *checkpoint,
			   sheet_store_row_fn fn, void *ctx);
	/* called inside the write group (sheet_store.c opens it), as append
	 * is: ERR_CONFLICT leaves the group as it was, any other failure
	 * loses it (sheet_store.c rolls it back) */
	error_code (*save)(store *s, uint64_t from, uint64_t to,
			   const sheet_store_row *rows, size_t n, bool replace);
} sheet_store_ops;

/* A store's kept sheet is a handle inside the store itself. */
struct sheet_store {
	store *owner;
};

typedef struct store_ops {
	const char *kind;
	/* What this backend reads back is only what its own appends wrote, in
	 * this process, and nobody else can change it (the memory store): the
	 * checks store.c makes of every event read from a file or a shared
	 * database are skipped for it. */
	bool trusted;
	void (*free)(store *s);
	/* In a grouping store, called with the group open (store_append opens
	 * it). ERR_CONFLICT: nothing written, the group as it was; any other
	 * failure: store.c rolls the whole group back and reports it lost. */
	error_code (*append)(store *s, const store_new_event *evs, size_t n,
			     int64_t time_ms, uint64_t *last_position);
	error_code (*read_stream)(store *s, const char *stream,
				  uint64_t after_version, store_event_fn fn,
				  void *ctx);
	error_code (*read_all)(store *s, uint64_t after, size_t limit,
			       store_event_fn fn, void *ctx);
	/* NULL in a store that keeps no state beside its streams: then
	 * store_stream_state says 0 and the handler replays the stream. */
	error_code (*stream_state)(store *s, const char *stream, size_t len,
				   uint32_t *key, uint64_t *version,
				   int64_t *balance);
	error_code (*head)(store *s, uint64_t *head);
	error_code (*stream_count)(store *s, uint64_t *count);
	error_code (*streams)(store *s, const char *prefix, store_stream_fn fn,
			      void *ctx);
	/* A store that gathers writes in groups has all three; NULL in one
	 * that keeps every append at once. begin opens a write transaction,
	 * commit ends it (on failure it may leave the transaction open:
	 * rollback follows), rollback drops it. store.c keeps the state. */
	error_code (*begin)(store *s);
	error_code (*commit)(store *s);
	void (*rollback)(store *s);
	/* A group past its time bound is committed early only if someone
	 * waits for the write lock; this says whether anyone does, cheaply
	 * (asked at most every few ms). NULL: assume someone does. */
	bool (*others_waiting)(store *s);
	/* NULL: the store cannot tell cheaply (store_poll says changed). */
	error_code (*poll)(store *s, bool *changed);
	/* store_backup's work done by the store itself (the sqlite store, by
	 * SQLite's online backup), called with no group open; NULL: the
	 * generic copy in store_backup.c, through the public calls. */
	error_code (*backup)(store *s, const char *path, char **abs,
			     uint64_t *events);
	/* The kept balance sheet's methods (sheet_store.h), or NULL in a store
	 * that keeps none: a second table beside this one, as SQLite's unix
	 * VFS fills both a VFS and its files' methods. */
	const sheet_store_ops *sheet;
} store_ops;

struct store {
	const store_ops *ops;
	char errmsg[256];	/* the last ERR_STORAGE's reason */
	store_stats stats;	/* kept by store.c, for every backend */
	/* the write group, kept by store.c for the backends that group */
	bool in_group;		/* a write transaction is open */
	bool lost;		/* a group was rolled back after a failure that
				   the session has not yet been told of
				   through store_commit: results of it may
				   be waiting */
	size_t group_events;	/* events appended in the open group */
	uint64_t group_began_ms;	/* monotonic ms: the group's lock taken */
	uint64_t group_asked_ms;	/* when others_waiting last said no */
	long test_append_delay_ms;	/* tests only: a nap before each append */
	char *location;		/* store_location's answer; the backend sets
				   it (xmalloc'd), store_free frees it */
	bool created;		/* this open made a new ledger */
	store_wait_fn wait;	/* store_set_wait's hook, or NULL */
	void *wait_ctx;
	struct sheet_store kept;	/* sheet_store_of's answer */
};

/* ---- store_base.c: what a backend may call ---- */

/* Sets s->errmsg, printf-style; returns ERR_STORAGE. The one way to say
 * why a store call failed, for the backends, store.c and the handler and
 * sheet (which find a damaged ledger in what the store handed them). */
error_code store_base_fail(store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* For a backend waiting for another program's write lock: calls the wait
 * hook, if any. false: stop waiting, fail the call with ERR_BUSY. */
bool store_base_waiting(store *s, unsigned waited_ms);

/* ---- the backends, for store.c's table and store_backup.c ---- */

/* Each as store.c's table calls it: arg is what follows the URI's prefix
 * (or the whole URI); on failure NULL, with why for people. */
store *store_memory_open(const char *arg, char *why, size_t why_len);
/* path: the file after "sqlite:". On failure returns NULL and says why. */
store *store_sqlite_open(const char *path, char *why, size_t why_len);
/* uri: the whole postgresql:// or postgres:// URI, as libpq takes it. */
store *store_pg_open(const char *uri, char *why, size_t why_len);

/* A new SQLite ledger file written row by row (store_backup's copy of a
 * store that is not sqlite): made 0600 at path, which must not exist, with
 * this build's schema, in one transaction. Each call fails with
 * ERR_BACKUP_FAILED and report's errmsg saying why; finish and abort free
 * the writer, and leave nothing at path unless finish worked. */
typedef struct store_sqlite_file store_sqlite_file;
error_code store_sqlite_file_new(store *report, const char *path,
				 store_sqlite_file **out);
/* An event as it is, its stream named by number (1, 2, …). */
error_code store_sqlite_file_event(store_sqlite_file *f, const store_event *ev,
				   int64_t stream_id);
/* A stream's number, name, last version and balance (its kept state). */
error_code store_sqlite_file_stream(store_sqlite_file *f, int64_t id,
				    const char *name, uint64_t version,
				    int64_t balance);
error_code store_sqlite_file_balance(store_sqlite_file *f, const char *account,
				     int64_t balance);
/* Sets the kept checkpoint, commits and closes; *abs (freed by the caller)
 * is the file's absolute path. */
error_code store_sqlite_file_finish(store_sqlite_file *f, uint64_t checkpoint,
				    char **abs);
void store_sqlite_file_abort(store_sqlite_file *f);

/* ---- store.c, for the modules above it ---- */

/* A write into the group (an append, and sheet_store.c's save) is
 *	rc = store_group_begin(s); then rc = store_group_wrote(s, ops->…(…));
 * begin opens the group's transaction unless one is open (or the store
 * does not group). wrote takes the write's result: ERR_CONFLICT left the
 * group as it was; any other failure rolls the whole group back, so that
 * nothing of it is kept, and makes the next store_commit say so. It
 * returns rc. */
error_code store_group_begin(store *s);
error_code store_group_wrote(store *s, error_code rc);
/* Commits the open group before its results are shown (a full group, a
 * backup): on failure the group is lost as a failed write's is, and
 * the next store_commit says so, once, since results of it may be waiting
 * unshown. */
error_code store_commit_early(store *s);

/* "the account id '...' (not 1 to 64 of ...)", at most 64 bytes of id
 * quoted, or "no account id": for a message about an id read back that is
 * none. Returns dst (or a constant). */
const char *store_quoted_id(const char *id, char *dst, size_t len);


#endif
