/* cmd_deposit.c — deposit ACCOUNT AMOUNT: the handler decides and the store
 * keeps the credit (the first one opens the account); out shows it. */
#include "cmd_impl.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	handler_result res;
	error_code rc = handler_deposit(ctx->handler, p->account[0],
					 p->account_len[0], p->amount, &res);
	if (rc != ERR_OK)
		return cmd_refused(ctx, self->name, rc, p->account[0],
				   p->account[0], p->amount, &res);
	out_deposit(ctx->out, p->account[0], p->account_len[0], p->amount, &res);
	return CMD_OK;
}

const cmd_entry cmd_deposit_entry = {
	"deposit", 2, 2, "an", "deposit ACCOUNT AMOUNT",
	"credit AMOUNT; the first deposit opens ACCOUNT",
	"deposit XX1 1000", exec,
};
