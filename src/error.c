/* error.c — names of the result codes, as JSON mode prints them. */
#include "simplecqrs/error.h"

static const char *const names[ERR_COUNT] = {
	[ERR_OK] = "ok",
	[ERR_UNKNOWN_COMMAND] = "unknown_command",
	[ERR_USAGE] = "usage",
	[ERR_INVALID_ACCOUNT] = "invalid_account",
	[ERR_INVALID_AMOUNT] = "invalid_amount",
	[ERR_LINE_TOO_LONG] = "line_too_long",
	[ERR_INVALID_INPUT] = "invalid_input",
	[ERR_UNKNOWN_ACCOUNT] = "unknown_account",
	[ERR_INSUFFICIENT_FUNDS] = "insufficient_funds",
	[ERR_SAME_ACCOUNT] = "same_account",
	[ERR_OVERFLOW] = "overflow",
	[ERR_CONFLICT] = "conflict",
	[ERR_STORAGE] = "storage",
	[ERR_BUSY] = "busy",
	[ERR_BACKUP_FAILED] = "backup_failed",
};

const char *error_name(error_code code)
{
	if ((unsigned)code >= ERR_COUNT)
		return "storage";
	return names[code];
}
