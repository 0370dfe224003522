/* test_account.c — the aggregate's rules at their edges. */
#include "simplecqrs/account.h"
#include "unit.h"

START_TEST(a_deposit_opens_an_account)
{
	account_state st = { 0, 0 };
	ck_assert_int_eq(account_can_deposit(&st, 5), ERR_OK);
	ck_assert_int_eq(account_apply(&st, EVENT_CREDITED, 5), ERR_OK);
	ck_assert_int_eq(st.balance, 5);
	ck_assert_uint_eq(st.version, 1);
}
END_TEST

START_TEST(no_balance_past_int64_max)
{
	account_state st = { INT64_MAX - 1, 3 };
	ck_assert_int_eq(account_can_deposit(&st, 1), ERR_OK);
	ck_assert_int_eq(account_can_deposit(&st, 2), ERR_OVERFLOW);
	ck_assert_int_eq(account_can_deposit(&st, INT64_MAX), ERR_OVERFLOW);
	st.balance = 0;
	ck_assert_int_eq(account_can_deposit(&st, INT64_MAX), ERR_OK);
}
END_TEST

START_TEST(no_overdraft)
{
	account_state st = { 700, 2 };
	ck_assert_int_eq(account_can_withdraw(&st, 700), ERR_OK);
	ck_assert_int_eq(account_can_withdraw(&st, 701), ERR_INSUFFICIENT_FUNDS);
	ck_assert_int_eq(account_can_withdraw(&st, INT64_MAX), ERR_INSUFFICIENT_FUNDS);
	ck_assert_int_eq(account_apply(&st, EVENT_DEBITED, 700), ERR_OK);
	ck_assert_int_eq(st.balance, 0);
	ck_assert_uint_eq(st.version, 3);
	ck_assert_int_eq(account_can_withdraw(&st, 1), ERR_INSUFFICIENT_FUNDS);
}
END_TEST

START_TEST(withdraw_needs_a_stream)
{
	account_state st = { 0, 0 };
	ck_assert_int_eq(account_can_withdraw(&st, 1), ERR_UNKNOWN_ACCOUNT);
}
END_TEST

START_TEST(apply_refuses_events_that_break_the_rules)
{
	account_state st = { 10, 1 };
	ck_assert_int_eq(account_apply(&st, EVENT_DEBITED, 11), ERR_STORAGE);
	ck_assert_int_eq(account_apply(&st, EVENT_CREDITED, INT64_MAX), ERR_STORAGE);
	ck_assert_int_eq(account_apply(&st, EVENT_CREDITED, 0), ERR_STORAGE);
	ck_assert_int_eq(st.balance, 10);	/* unchanged by refusals */
	ck_assert_uint_eq(st.version, 1);
	account_state none = { 0, 0 };
	ck_assert_int_eq(account_apply(&none, EVENT_DEBITED, 1), ERR_STORAGE);
}
END_TEST

static Suite *account_suite(void)
{
	Suite *s = suite_create("account");
	TCase *t = tcase_create("deposit");
	tcase_add_test(t, a_deposit_opens_an_account);
	tcase_add_test(t, no_balance_past_int64_max);
	suite_add_tcase(s, t);
	t = tcase_create("withdraw");
	tcase_add_test(t, no_overdraft);
	tcase_add_test(t, withdraw_needs_a_stream);
	suite_add_tcase(s, t);
	t = tcase_create("apply");
	tcase_add_test(t, apply_refuses_events_that_break_the_rules);
	suite_add_tcase(s, t);
	return s;
}

UNIT_MAIN(account_suite)
