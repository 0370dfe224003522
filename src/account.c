/* account.c — the account's rules. Pure: no store, no output, no clock. */
#include "simplecqrs/account.h"

error_code account_apply(account_state *st, event_type type, int64_t amount)
{
	int64_t balance;
	if (amount <= 0)
		return ERR_STORAGE;
	if (type == EVENT_CREDITED) {
		if (__builtin_add_overflow(st->balance, amount, &balance))
			return ERR_STORAGE;
	} else {
		if (st->version == 0 || amount > st->balance)
			return ERR_STORAGE;
		balance = st->balance - amount;
	}
	st->balance = balance;
	st->version++;
	return ERR_OK;
}

error_code account_can_deposit(const account_state *st, int64_t amount)
{
	int64_t balance;
	if (__builtin_add_overflow(st->balance, amount, &balance))
		return ERR_OVERFLOW;
	return ERR_OK;
}

error_code account_can_withdraw(const account_state *st, int64_t amount)
{
	if (st->version == 0)
		return ERR_UNKNOWN_ACCOUNT;
	if (amount > st->balance)
		return ERR_INSUFFICIENT_FUNDS;
	return ERR_OK;
}
