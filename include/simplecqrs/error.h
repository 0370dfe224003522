/* error.h — the result codes every module returns.
 *
 * ERR_OK is 0 and every failure is a non-zero value; error_name() gives the
 * stable snake_case string that JSON mode prints as "error". The library never
 * prints: a caller turns a code into a message and decides where it goes. */
#ifndef SIMPLECQRS_ERROR_H
#define SIMPLECQRS_ERROR_H

typedef enum error_code {
	ERR_OK = 0,
	ERR_UNKNOWN_COMMAND,
	ERR_USAGE,		/* wrong number of arguments */
	ERR_INVALID_ACCOUNT,
	ERR_INVALID_AMOUNT,
	ERR_LINE_TOO_LONG,
	ERR_INVALID_INPUT,	/* a NUL byte in the line */
	ERR_UNKNOWN_ACCOUNT,
	ERR_INSUFFICIENT_FUNDS,
	ERR_SAME_ACCOUNT,
	ERR_OVERFLOW,
	ERR_CONFLICT,		/* a concurrent writer won every retry */
	ERR_STORAGE,		/* the store failed: outcome unknown */
	ERR_BUSY,		/* another program held the write lock past the
				   wait, or the user ended the wait: nothing
				   was written */
	ERR_BACKUP_FAILED,	/* backup: the path exists or cannot be written */
	ERR_COUNT
} error_code;

/* The JSON "error" string of a code, e.g. "insufficient_funds". */
const char *error_name(error_code code);

#endif
