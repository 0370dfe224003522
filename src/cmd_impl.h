/* cmd_impl.h — private to the command files (src/cmd*.c): each command's
 * entry, for cmd.c's table, and the error reporters several commands share
 * (their bodies in cmd_report.c). */
#ifndef SIMPLECQRS_CMD_IMPL_H
#define SIMPLECQRS_CMD_IMPL_H

#include "simplecqrs/cmd.h"

/* One per command, each defined in src/cmd_NAME.c (families share a file:
 * cmd_refresh.c holds rebuild too, cmd_quit.c exit). */
extern const cmd_entry cmd_deposit_entry;
extern const cmd_entry cmd_withdraw_entry;
extern const cmd_entry cmd_transfer_entry;
extern const cmd_entry cmd_refresh_entry;
extern const cmd_entry cmd_balances_entry;
extern const cmd_entry cmd_balance_entry;
extern const cmd_entry cmd_history_entry;
extern const cmd_entry cmd_status_entry;
extern const cmd_entry cmd_backup_entry;
extern const cmd_entry cmd_rebuild_entry;
extern const cmd_entry cmd_help_entry;	/* in cmd.c, beside the table */
extern const cmd_entry cmd_quit_entry;
extern const cmd_entry cmd_exit_entry;

/* The sheet's lag (sheet_behind); the caller reports a storage error. */
error_code cmd_lag(cmd_ctx *ctx, uint64_t *behind);
/* Reports the store's error for cmd; returns CMD_FATAL. */
cmd_status cmd_storage_failed(cmd_ctx *ctx, const char *cmd);
/* Reports a handler's refusal of a write (rc, with res as the handler left
 * it) in the account's terms; returns CMD_FAILED, or CMD_FATAL for a
 * storage error. to is the account credited, if any. */
cmd_status cmd_refused(cmd_ctx *ctx, const char *cmd, error_code rc,
		       const char *account, const char *to, int64_t amount,
		       const handler_result *res);

#endif
