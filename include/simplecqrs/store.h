/* store.h — the event store: an append-only log of account events.
 *
 * Every event has a global position (unique, increasing in commit order) and
 * a version within its stream (1, 2, 3, … per account, no gaps). An append
 * names the version it expects each stream to be at and is all-or-nothing:
 * if any stream moved, nothing is written and ERR_CONFLICT comes back. The
 * backends (memory, sqlite, postgresql) sit behind this one interface; the
 * handler and the read side never know which one they talk to. (What a
 * store keeps beside its events has an interface of its own.) */
#ifndef SIMPLECQRS_STORE_H
#define SIMPLECQRS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simplecqrs/error.h"

typedef enum event_type {
	EVENT_CREDITED = 1,	/* AccountCredited: money in */
	EVENT_DEBITED = 2,	/* AccountDebited: money out */
} event_type;

/* The name JSON and history print, e.g. "AccountCredited". */
const char *event_type_name(event_type type);

typedef struct store_event {
	uint64_t position;
	uint64_t version;
	const char *stream;	/* valid during the callback only */
	uint32_t stream_key;	/* a number for the stream, the same for as
				   long as the store is open; 0 if the store
				   has none. Lets a reader skip hashing ids. */
	event_type type;
	int64_t amount;		/* always > 0; type says which way */
	int64_t time_ms;	/* milliseconds since the Unix epoch, UTC */
} store_event;

/* One event to append, with the version its stream must be at now (0: the
 * stream must not exist yet). The last two fields only save work: left 0
 * and NULL, the store measures the id and finds the stream itself. */
typedef struct store_new_event {
	const char *stream;
	uint64_t expected_version;
	event_type type;
	int64_t amount;
	size_t stream_len;	/* strlen(stream), or 0: the store measures it */
	uint32_t *stream_key;	/* NULL, or in: the key a store put here in an
				   earlier append of this stream (0: none
				   yet), only a hint that the store checks
				   against the id; out: a store that numbers
				   streams puts the stream's key here (as in
				   store_event), others leave it alone */
} store_new_event;

/* Called once per event read. A non-zero return stops the read early; that
 * is not a failure of the store, so the callback keeps its own verdict. */
typedef int (*store_event_fn)(void *ctx, const store_event *ev);

typedef struct store store;

/* Opens the store a URI names: "memory", "sqlite:PATH", "postgresql://…".
 * On failure returns ERR_STORAGE and writes one line for people into why.
 * The caller frees the store with store_free. */
error_code store_open(const char *uri, store **out, char *why, size_t why_len);
void store_free(store *s);

/* uri with any password taken out (user:secret@ becomes user@, and a
 * password=… parameter's value becomes ***), for showing to people. Always
 * NUL-terminates out. */
void store_safe_uri(const char *uri, char *out, size_t out_len);

/* "memory", "sqlite" or "postgresql". */
const char *store_kind(const store *s);
/* Where the ledger is, for people: the SQLite file's absolute path, or the
 * PostgreSQL URI without its password; NULL for the memory store. Owned by
 * the store. */
const char *store_location(const store *s);
/* true when this open made a new, empty ledger (so a mistyped path shows). */
bool store_created(const store *s);

/* Called about every 100 ms while the store waits for a write lock that
 * another program holds, with how long it has waited so far. Returning
 * false stops the wait: the call that waited fails with ERR_BUSY and has
 * written nothing. Without a hook (or when it says true) the store waits
 * up to its own limit (10 s), then fails with ERR_BUSY. */
typedef bool (*store_wait_fn)(void *ctx, unsigned waited_ms);
void store_set_wait(store *s, store_wait_fn fn, void *ctx);

/* Cheap, for an idle prompt: *changed is true when anyone (another shell
 * included) may have committed to the store since the last call. A store
 * that cannot tell cheaply says true. */
error_code store_poll(store *s, bool *changed);
/* Writes a consistent copy of the whole ledger (every event with its
 * position, version and time, and what the store keeps beside them) to a
 * new SQLite ledger file at path, while other shells keep working; commits the open
 * group first. *abs_path (freed by the caller) is the file's absolute path
 * and *events how many events it holds. ERR_BACKUP_FAILED when path exists,
 * its folder is missing or not writable, or the copy cannot be written:
 * nothing is left at path, store_errmsg says why. ERR_STORAGE when reading
 * the store failed. */
error_code store_backup(store *s, const char *path, char **abs_path,
			uint64_t *events);

/* Every call below returns ERR_OK or ERR_STORAGE (append: also
 * ERR_CONFLICT; a write that had to wait for another program's lock: also
 * ERR_BUSY), and store_errmsg says why the last one failed. */

/* The last failure's message, for ERR_STORAGE; owned by the store. */
const char *store_errmsg(const store *s);

/* Appends n events atomically, all stamped time_ms. On success *last_position
 * is the position of the last one (the first is last - n + 1). An event
 * that would take its stream's balance (its credits less its debits) out of
 * 0..INT64_MAX is not a conflict but a bad append: ERR_STORAGE, nothing
 * written (the handler never asks for one). */
error_code store_append(store *s, const store_new_event *evs, size_t n,
			int64_t time_ms, uint64_t *last_position);
/* Calls fn for each event of a stream with version > after_version, in
 * version order. A stream that does not exist has no events. */
error_code store_read_stream(store *s, const char *stream, uint64_t after_version,
			     store_event_fn fn, void *ctx);
/* What the store keeps beside a stream, the account's snapshot: its last
 * version (0: no stream yet) and the balance its events add up to, written
 * in the same transaction as they are. One lookup however long the stream
 * is: a reopened shell decides on an account with a million events without
 * replaying them. len is strlen(stream); *key is a hint as in
 * store_new_event (0: none), and out the stream's key where the store
 * numbers streams. */
error_code store_stream_state(store *s, const char *stream, size_t len,
			      uint32_t *key, uint64_t *version,
			      int64_t *balance);
/* Calls fn for at most limit events with position > after, in position
 * order. Callers loop until a call delivers fewer than limit. */
error_code store_read_all(store *s, uint64_t after, size_t limit,
			  store_event_fn fn, void *ctx);
/* The last position (0 when empty). */
error_code store_head(store *s, uint64_t *head);
/* How many events have a position > after. Every backend keeps positions
 * 1..head without gaps (SPEC allows PostgreSQL gaps; ours has none), so
 * this is head - after. */
error_code store_count_after(store *s, uint64_t after, uint64_t *count);
error_code store_stream_count(store *s, uint64_t *count);

/* For the handler and the read side, which fold the events a read handed
 * them onto balances the store does not know: ev would take its account's
 * balance, before, out of 0..INT64_MAX. Makes that the store's
 * "damaged ledger" message naming the account, version and position, and
 * returns ERR_STORAGE. */
error_code store_fail_balance(store *s, const store_event *ev, int64_t before);

/* What a store was asked since it opened: appends that wrote, and appends
 * refused because a stream had moved (each one a handler's retry); and
 * groups the store committed on its own (full, or past their time bound,
 * or before a backup): the results of such a group are kept and may be
 * shown at once. */
typedef struct store_stats {
	uint64_t appends;
	uint64_t conflicts;
	uint64_t early_commits;
} store_stats;
store_stats store_get_stats(const store *s);

/* Makes every write so far durable. A durable store (sqlite, postgresql)
 * gathers the writes of many commands into one transaction, a group, so a
 * result must not be shown before the group holding its events is
 * committed: the session calls this before it writes anything. The memory
 * store has nothing to do. On failure the whole group is rolled back and
 * ERR_STORAGE comes back; whether the disk kept it is then unknown. A group
 * that failed halfway (in an append, say) is reported here too, once. */
error_code store_commit(store *s);

/* Called once per stream id; a non-zero return stops the listing early. */
typedef int (*store_stream_fn)(void *ctx, const char *stream);
/* Calls fn for each stream whose id starts with prefix, in no set order.
 * (The shell completes account ids with it.) */
error_code store_streams(store *s, const char *prefix, store_stream_fn fn,
			 void *ctx);

#endif
