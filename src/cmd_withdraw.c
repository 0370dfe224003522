/* cmd_withdraw.c — withdraw ACCOUNT AMOUNT: the handler decides (the account
 * must hold the amount) and the store keeps the debit; out shows it. */
#include "cmd_impl.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	handler_result res;
	error_code rc = handler_withdraw(ctx->handler, p->account[0],
					  p->account_len[0], p->amount, &res);
	if (rc != ERR_OK)
		return cmd_refused(ctx, self->name, rc, p->account[0], NULL,
				   p->amount, &res);
	out_withdraw(ctx->out, p->account[0], p->account_len[0], p->amount,
		     &res);
	return CMD_OK;
}

const cmd_entry cmd_withdraw_entry = {
	"withdraw", 2, 2, "an", "withdraw ACCOUNT AMOUNT",
	"debit AMOUNT, if ACCOUNT holds that much",
	"withdraw XX1 300", exec,
};
