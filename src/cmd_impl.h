/* cmd_impl.h — private to the command files (src/cmd*.c): the error
 * reports several commands share, their bodies in cmd_report.c. */
#ifndef SIMPLECQRS_CMD_IMPL_H
#define SIMPLECQRS_CMD_IMPL_H

#include "simplecqrs/cmd.h"

/* Reports the store's error for cmd; returns CMD_FATAL. */
cmd_status cmd_storage_failed(cmd_ctx *ctx, const char *cmd);
/* Reports a handler's refusal of a write (rc, with res as the handler left
 * it) in the account's terms; returns CMD_FAILED, or CMD_FATAL for a
 * storage error. to is the account credited, if any. */
cmd_status cmd_refused(cmd_ctx *ctx, const char *cmd, error_code rc,
		       const char *account, const char *to, int64_t amount,
		       const handler_result *res);

#endif
