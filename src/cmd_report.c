/* cmd_report.c — the error reports several commands share (cmd_impl.h):
 * the store failed, the handler refused a write, and the sheet's lag. */
#include <string.h>
#include "simplecqrs/buf.h"
#include "cmd_impl.h"

cmd_status cmd_storage_failed(cmd_ctx *ctx, const char *cmd)
{
	out_error(ctx->out, ctx->line, cmd, ERR_STORAGE, "storage failed: %s",
		  store_errmsg(ctx->store));
	return CMD_FATAL;
}

/* Copies s to p; returns the end. */
static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

cmd_status cmd_refused(cmd_ctx *ctx, const char *cmd, error_code rc,
		       const char *account, const char *to, int64_t amount,
		       const handler_result *res)
{
	/* The two refusals a script meets most are put together by hand:
	 * a printf per refusal was a tenth of a mixed workload's time.
	 * Ids are at most 64 bytes and numbers 20, so 200 bytes hold it. */
	char msg[200], *p = msg;
	switch (rc) {
	case ERR_UNKNOWN_ACCOUNT:
		p = put_str(put_str(p, "no account "), account);
		out_error_msg(ctx->out, ctx->line, cmd, rc, msg, (size_t)(p - msg));
		break;
	case ERR_INSUFFICIENT_FUNDS:
		p = put_str(put_str(p, account), " has ");
		p += buf_fmt_u64(p, (uint64_t)res->balance);
		p = put_str(put_str(put_str(p, ", cannot "), cmd), " ");
		p += buf_fmt_u64(p, (uint64_t)amount);
		out_error_msg(ctx->out, ctx->line, cmd, rc, msg, (size_t)(p - msg));
		break;
	case ERR_OVERFLOW:
		out_error(ctx->out, ctx->line, cmd, rc,
			  "%s has %lld; %lld more would pass 9223372036854775807",
			  to, (long long)res->balance, (long long)amount);
		break;
	case ERR_SAME_ACCOUNT:
		out_error(ctx->out, ctx->line, cmd, rc,
			  "cannot transfer from %s to itself", account);
		break;
	case ERR_CONFLICT:
		out_error(ctx->out, ctx->line, cmd, rc,
			  "another writer changed %s %u time%s; nothing was done",
			  account, res->conflicts, res->conflicts == 1 ? "" : "s");
		break;
	case ERR_BUSY:
		out_error(ctx->out, ctx->line, cmd, rc, "%s; nothing was written",
			  store_errmsg(ctx->store));
		break;
	default:
		return cmd_storage_failed(ctx, cmd);
	}
	return CMD_FAILED;
}
