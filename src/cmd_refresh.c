/* cmd_refresh.c — refresh and rebuild, the two commands that move the
 * balance sheet: refresh applies the events it has not seen, rebuild
 * replays every event into an empty sheet; out shows how many. */
#include "cmd_impl.h"

/* A refresh or rebuild that failed: other shells kept moving the shared
 * sheet first (conflict, nothing applied), or the store failed. */
static cmd_status sheet_failed(cmd_ctx *ctx, const char *cmd, error_code rc)
{
	if (rc == ERR_BUSY) {
		out_error(ctx->out, ctx->line, cmd, rc, "%s; nothing was applied",
			  store_errmsg(ctx->store));
		return CMD_FAILED;
	}
	if (rc != ERR_CONFLICT)
		return cmd_storage_failed(ctx, cmd);
	out_error(ctx->out, ctx->line, cmd, rc,
		  "other shells moved the balance sheet first every time; "
		  "nothing was applied");
	return CMD_FAILED;
}

static cmd_status exec_refresh(cmd_ctx *ctx, const cmd_entry *self,
			       const parse_result *p)
{
	(void)p;
	uint64_t applied;
	error_code rc = sheet_refresh(ctx->sheet, ctx->store, &applied);
	if (rc != ERR_OK)
		return sheet_failed(ctx, self->name, rc);
	out_refresh(ctx->out, false, applied, sheet_checkpoint(ctx->sheet));
	return CMD_OK;
}

static cmd_status exec_rebuild(cmd_ctx *ctx, const cmd_entry *self,
			       const parse_result *p)
{
	(void)p;
	uint64_t applied;
	error_code rc = sheet_rebuild(ctx->sheet, ctx->store, &applied);
	if (rc != ERR_OK)
		return sheet_failed(ctx, self->name, rc);
	out_refresh(ctx->out, true, applied, sheet_checkpoint(ctx->sheet));
	return CMD_OK;
}

const cmd_entry cmd_refresh_entry = {
	"refresh", 0, 0, "", "refresh",
	"bring the balance sheet up to date",
	"refresh", exec_refresh,
};

const cmd_entry cmd_rebuild_entry = {
	"rebuild", 0, 0, "", "rebuild",
	"replay every event into an empty balance sheet",
	"rebuild", exec_rebuild,
};
