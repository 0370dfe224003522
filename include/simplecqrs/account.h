/* account.h — the account aggregate: its state and its rules, pure.
 *
 * State is a balance and a version (the number of events applied; 0 means
 * the account has no stream yet). The decide functions only say yes or why
 * not; they never change state. Balances stay within 0..INT64_MAX. */
#ifndef SIMPLECQRS_ACCOUNT_H
#define SIMPLECQRS_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>
#include "simplecqrs/error.h"
#include "simplecqrs/store.h"

typedef struct account_state {
	int64_t balance;
	uint64_t version;
} account_state;

/* Folds one event into the state. Returns ERR_STORAGE if the event breaks
 * the rules (the log is corrupt); state is unchanged then. */
error_code account_apply(account_state *st, event_type type, int64_t amount);

/* ERR_OK, or ERR_OVERFLOW when the balance would pass INT64_MAX. A deposit
 * into an account with no stream opens it. */
error_code account_can_deposit(const account_state *st, int64_t amount);
/* ERR_OK, ERR_UNKNOWN_ACCOUNT (no stream) or ERR_INSUFFICIENT_FUNDS. */
error_code account_can_withdraw(const account_state *st, int64_t amount);

#endif
