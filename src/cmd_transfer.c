/* cmd_transfer.c — transfer FROM TO AMOUNT: the handler decides and the
 * store keeps the debit and the credit as one (both or neither); out shows
 * them. */
#include "cmd_impl.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	handler_result res;
	error_code rc = handler_transfer(ctx->handler, p->account[0],
					 p->account_len[0], p->account[1],
					 p->account_len[1], p->amount, &res);
	if (rc != ERR_OK)
		return cmd_refused(ctx, self->name, rc, p->account[0],
				   p->account[1], p->amount, &res);
	out_transfer(ctx->out, p->account[0], p->account[1], p->amount, &res);
	return CMD_OK;
}

const cmd_entry cmd_transfer_entry = {
	"transfer", 3, 3, "aan", "transfer FROM TO AMOUNT",
	"debit FROM, credit TO: both or neither",
	"transfer XX1 XX2 50", exec,
};
