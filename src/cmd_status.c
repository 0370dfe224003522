/* cmd_status.c — status: the store (kind, place, head, streams) and the
 * balance sheet's checkpoint and lag. */
#include "cmd_impl.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	(void)p;
	uint64_t head, streams, behind;
	if (store_head(ctx->store, &head) || store_stream_count(ctx->store, &streams) ||
	    sheet_behind(ctx->sheet, ctx->store, &behind))
		return cmd_storage_failed(ctx, self->name);
	out_status(ctx->out, store_kind(ctx->store), store_location(ctx->store),
		   head, streams, sheet_checkpoint(ctx->sheet), behind);
	return CMD_OK;
}

const cmd_entry cmd_status_entry = {
	"status", 0, 0, "", "status",
	"the store, its head and streams, and the lag",
	"status", exec,
};
