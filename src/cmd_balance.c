/* cmd_balance.c — balance ACCOUNT: one row of the balance sheet and the
 * lag; for an account the sheet lacks, whether a refresh would find it. */
#include "cmd_impl.h"

static int found(void *vctx, const store_event *ev)
{
	(void)ev;
	*(bool *)vctx = true;
	return 1;	/* one event is enough */
}

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	int64_t balance;
	uint64_t behind;
	if (sheet_behind(ctx->sheet, ctx->store, &behind) != ERR_OK)
		return cmd_storage_failed(ctx, self->name);
	if (!sheet_balance(ctx->sheet, p->account[0], &balance)) {
		/* 'refresh' helps only if the account is in the store already */
		bool stored = false;
		if (behind > 0 && store_read_stream(ctx->store, p->account[0], 0,
						    found, &stored) != ERR_OK)
			return cmd_storage_failed(ctx, self->name);
		out_error(ctx->out, ctx->line, self->name, ERR_UNKNOWN_ACCOUNT,
			  "the balance sheet has no account %s%s", p->account[0],
			  stored ? " yet (it is in the store: run 'refresh')" : "");
		return CMD_FAILED;
	}
	out_balance(ctx->out, p->account[0], balance, sheet_checkpoint(ctx->sheet),
		    behind);
	return CMD_OK;
}

const cmd_entry cmd_balance_entry = {
	"balance", 1, 1, "a", "balance ACCOUNT",
	"one balance from the balance sheet",
	"balance XX1", exec,
};
