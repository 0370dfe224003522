/* cmd_balances.c — balances: every row of the balance sheet, sorted, and
 * how far the sheet lags the store. */
#include <stdlib.h>
#include "cmd_impl.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	(void)p;
	uint64_t behind;
	if (sheet_behind(ctx->sheet, ctx->store, &behind) != ERR_OK)
		return cmd_storage_failed(ctx, self->name);
	size_t n;
	sheet_row *rows = sheet_sorted(ctx->sheet, &n);
	out_balances(ctx->out, rows, n, sheet_checkpoint(ctx->sheet), behind);
	free(rows);
	return CMD_OK;
}

const cmd_entry cmd_balances_entry = {
	"balances", 0, 0, "", "balances",
	"the balance sheet, and how far it lags",
	"balances", exec,
};
