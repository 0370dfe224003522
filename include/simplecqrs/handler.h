/* handler.h — the account handler: the write side.
 *
 * For each command it takes the aggregate's cached state, asks the rules, and
 * appends the new events with the cached version. When another writer got
 * there first the append conflicts, and the handler reads the events after
 * that version and decides again, at most HANDLER_RETRIES more times after
 * the first such re-read, before answering ERR_CONFLICT. An account it has
 * not cached starts from the store's kept state of it (store_stream_state),
 * never a replay. A refusal is always decided on what the store holds,
 * never on the cache alone. */
#ifndef SIMPLECQRS_HANDLER_H
#define SIMPLECQRS_HANDLER_H

#include <stdint.h>
#include "simplecqrs/error.h"
#include "simplecqrs/store.h"

#define HANDLER_RETRIES 5

typedef struct handler handler;

typedef struct handler_result {
	uint64_t version;	/* the account's new version (deposit, withdraw) */
	uint64_t position;	/* position of the last event appended */
	int64_t balance;	/* on insufficient_funds or overflow: the balance
				   the rule saw */
	unsigned conflicts;	/* appends that conflicted (at most
				   HANDLER_RETRIES + 2) */
} handler_result;

/* The store is borrowed: it must outlive the handler. */
handler *handler_new(store *s);
void handler_free(handler *h);

/* Each id comes with its length, strlen(id), which the caller has already
 * measured (the parser has), so the handler and the store never walk the
 * id for it. */
error_code handler_deposit(handler *h, const char *account, size_t len,
			   int64_t amount, handler_result *res);
error_code handler_withdraw(handler *h, const char *account, size_t len,
			    int64_t amount, handler_result *res);
/* Debits from and credits to in one append: both events or neither. */
error_code handler_transfer(handler *h, const char *from, size_t from_len,
			    const char *to, size_t to_len, int64_t amount,
			    handler_result *res);

/* The clock this handler stamps events with, in milliseconds since the
 * Unix epoch: the wall clock unless a test sets another (NULL: the wall
 * clock again). */
void handler_set_clock(handler *h, int64_t (*clock)(void));

#endif
