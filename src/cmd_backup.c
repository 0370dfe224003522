/* cmd_backup.c — backup PATH: a consistent copy of the whole ledger to a
 * new SQLite file, after every result shown so far has been committed. */
#include <stdlib.h>
#include "cmd_impl.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	/* the results shown so far go out first, and so are committed: the
	 * copy holds every write acknowledged before it */
	out_flush(ctx->out);
	if (out_held(ctx->out))
		return CMD_FATAL;	/* the session says what was lost */
	char *path;
	uint64_t events;
	error_code rc = store_backup(ctx->store, p->argv[0], &path, &events);
	if (rc == ERR_BACKUP_FAILED) {
		out_error(ctx->out, ctx->line, self->name, rc,
			  "%s; nothing was written", store_errmsg(ctx->store));
		return CMD_FAILED;
	}
	if (rc != ERR_OK)
		return cmd_storage_failed(ctx, self->name);
	out_backup(ctx->out, path, events);
	free(path);
	return CMD_OK;
}

const cmd_entry cmd_backup_entry = {
	"backup", 1, 1, "f", "backup PATH",
	"copy the whole ledger to a new SQLite file, while shells work",
	"backup ledger-copy.db", exec,
};
