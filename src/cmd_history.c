/* cmd_history.c — history ACCOUNT: the account's events, read from the
 * store (not the sheet), shown with the running balance. */
#include <stdlib.h>
#include "simplecqrs/xmalloc.h"
#include "cmd_impl.h"

typedef struct event_list {
	store_event *evs;
	size_t n, cap;
} event_list;

static int collect(void *vctx, const store_event *ev)
{
	event_list *l = vctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->evs = xreallocarray(l->evs, l->cap, sizeof *l->evs);
	}
	l->evs[l->n] = *ev;
	l->evs[l->n++].stream = NULL;	/* only valid in the callback */
	return 0;
}

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	event_list l = { 0 };
	if (store_read_stream(ctx->store, p->account[0], 0, collect, &l) != ERR_OK) {
		free(l.evs);
		return cmd_storage_failed(ctx, self->name);
	}
	if (l.n == 0) {
		out_error(ctx->out, ctx->line, self->name, ERR_UNKNOWN_ACCOUNT,
			  "no account %s", p->account[0]);
		return CMD_FAILED;
	}
	out_history(ctx->out, p->account[0], l.evs, l.n);
	free(l.evs);
	return CMD_OK;
}

const cmd_entry cmd_history_entry = {
	"history", 1, 1, "a", "history ACCOUNT",
	"an account's events, with the running balance",
	"history XX1", exec,
};
