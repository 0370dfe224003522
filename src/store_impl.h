/* store_impl.h — what a store backend implements (private to src/).
 *
 * A backend embeds `struct store` as its first member and fills a const
 * store_ops; store.c forwards each public call through it, the way SQLite's
 * VFS or redis's dictType work. */
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
	error_code (*append)(store *s, const store_new_event *evs, size_t n,
			     int64_t time_ms, uint64_t *last_position);
	error_code (*read_stream)(store *s, const char *stream,
				  uint64_t after_version, store_event_fn fn,
				  void *ctx);
	error_code (*read_all)(store *s, uint64_t after, size_t limit,
			       store_event_fn fn, void *ctx);
	error_code (*head)(store *s, uint64_t *head);
	error_code (*stream_count)(store *s, uint64_t *count);
	error_code (*streams)(store *s, const char *prefix, store_stream_fn fn,
			      void *ctx);
	/* A store that gathers writes in groups (see store_group_begin) has
	 * all three; NULL in one that keeps every append at once. begin opens
	 * a write transaction, commit ends it (on failure it may leave the
	 * transaction open: rollback follows), rollback drops it. */
	error_code (*begin)(store *s);
	error_code (*commit)(store *s);
	void (*rollback)(store *s);
	/* NULL: the store cannot tell cheaply (store_poll says changed). */
	error_code (*poll)(store *s, bool *changed);
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
				   the shell has not yet been told of through
				   store_commit: results of it may be waiting */
	size_t group_events;	/* events appended in the open group */
	char *location;		/* store_location's answer; the backend sets
				   it (xmalloc'd), store_free frees it */
	bool created;		/* this open made a new ledger */
	store_wait_fn wait;	/* store_set_wait's hook, or NULL */
	void *wait_ctx;
	struct sheet_store kept;	/* sheet_store_of's answer */
};

/* For a backend waiting for another program's write lock: calls the wait
 * hook, if any. false: stop waiting, fail the call with ERR_BUSY. */
bool store_waiting(store *s, unsigned waited_ms);

/* For a backend's writes: opens the group's transaction unless one is
 * open. Every write of a grouping backend starts with it. */
error_code store_group_begin(store *s);
/* For a backend's writes that failed halfway: rolls the whole group back,
 * so nothing of it is kept, and makes the next store_commit say so. */
void store_group_abandon(store *s);

store *store_memory_open(void);
/* path: the file after "sqlite:". On failure returns NULL and says why. */
store *store_sqlite_open(const char *path, char *why, size_t why_len);
/* store_backup's work, for any store s (the sqlite store by SQLite's online
 * backup, any other through the calls above); s has no open group. */
error_code store_sqlite_backup(store *s, const char *path, char **abs,
			       uint64_t *events);
/* uri: the whole postgresql:// or postgres:// URI, as libpq takes it. */
store *store_pg_open(const char *uri, char *why, size_t why_len);

/* Replaces in text every form of a password that uri (or extra, when not
 * NULL) holds, raw, %-decoded or in pieces, by ***; keeps it terminated
 * within text_len. For messages that can quote connection text. */
void store_scrub(const char *uri, const char *extra, char *text, size_t text_len);

/* "the account id '...' (not 1 to 64 of ...)", at most 64 bytes of id
 * quoted, or "no account id": for a message about an id read back that is
 * none. Returns dst (or a constant). */
const char *store_quoted_id(const char *id, char *dst, size_t len);

/* Sets s->errmsg, printf-style; returns ERR_STORAGE. */
error_code store_fail(store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
