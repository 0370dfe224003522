/* account.c — the account's rules. Pure: no store, no output, no clock. */
#include "simplecqrs/account.h"

error_code account_apply(account_state *st, event_type type, int64_t amount)
{
	int64_t balance;
	if ((type == EVENT_DEBITED && st->version == 0) ||
	    !account_next_balance(st->balance, type, amount, &balance))
		return ERR_STORAGE;
	st->balance = balance;
	st->version++;
	return ERR_OK;
}

error_code account_can_deposit(const account_state *st, int64_t amount)
{
	int64_t balance;
	return account_next_balance(st->balance, EVENT_CREDITED, amount, &balance)
		       ? ERR_OK : ERR_OVERFLOW;
}

error_code account_can_withdraw(const account_state *st, int64_t amount)
{
	if (st->version == 0)
		return ERR_UNKNOWN_ACCOUNT;
	int64_t balance;
	return account_next_balance(st->balance, EVENT_DEBITED, amount, &balance)
		       ? ERR_OK : ERR_INSUFFICIENT_FUNDS;
}
