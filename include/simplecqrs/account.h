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

/* The balance after one event, the one statement of the rule that a
 * balance stays within 0..INT64_MAX: false, and *next untouched, when the
 * event would take balance out of it (a credit past INT64_MAX, a debit
 * below 0). The handler, the balance sheet, history's running balance and
 * the store's read-back checks all fold events with it. Inline: the sheet
 * calls it once per event of a refresh. */
static inline bool account_next_balance(int64_t balance, event_type type,
					int64_t amount, int64_t *next)
{
	int64_t after;
	if (amount <= 0)
		return false;
	if (type == EVENT_CREDITED ? __builtin_add_overflow(balance, amount, &after)
				   : amount > balance)
		return false;
	*next = type == EVENT_CREDITED ? after : balance - amount;
	return true;
}

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
