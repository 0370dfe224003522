/* sheet_store.h — the kept balance sheet: a second interface of the stores
 * that keep one (sqlite, postgresql), beside the event store's.
 *
 * A store that keeps the sheet holds its rows (account, balance) and its
 * checkpoint (the position of the last event folded into them), and saves
 * them in the same write group as the events around them. Every row read
 * back is checked here (a valid id, a balance never below 0, a checkpoint
 * not past the last event) before the sheet sees it. The memory store keeps
 * no sheet: sheet_store_of says NULL, and the sheet lives in the process. */
#ifndef SIMPLECQRS_SHEET_STORE_H
#define SIMPLECQRS_SHEET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simplecqrs/error.h"
#include "simplecqrs/store.h"

typedef struct sheet_store sheet_store;

/* The sheet that s keeps, or NULL when it keeps none (the memory store).
 * Owned by s: valid for as long as s is open. */
sheet_store *sheet_store_of(store *s);

/* Every call below returns ERR_OK or ERR_STORAGE (save: also ERR_CONFLICT;
 * a save that had to wait for another program's lock: also ERR_BUSY), and
 * store_errmsg of the store says why the last one failed. */

/* The kept checkpoint. */
error_code sheet_store_checkpoint(sheet_store *k, uint64_t *checkpoint);

/* Called once per kept row; a non-zero return stops the load early. */
typedef int (*sheet_store_row_fn)(void *ctx, const char *account,
				  int64_t balance);
/* Calls fn for each kept row, in no set order, and sets *checkpoint; the
 * rows and the checkpoint are of one moment. */
error_code sheet_store_load(sheet_store *k, uint64_t *checkpoint,
			    sheet_store_row_fn fn, void *ctx);

typedef struct sheet_store_row {
	const char *account;
	int64_t balance;
} sheet_store_row;

/* Writes rows and moves the checkpoint from `from` to `to`, in the store's
 * write group (the same transaction as the writes around it), but only if
 * the kept checkpoint is still `from`: otherwise another shell refreshed
 * first, nothing is written and ERR_CONFLICT comes back. With replace, the
 * rows are the whole sheet and every other row goes (rebuild). A save that
 * fails otherwise loses the whole group, as a failed append does: the
 * store's next store_commit says so. */
error_code sheet_store_save(sheet_store *k, uint64_t from, uint64_t to,
			    const sheet_store_row *rows, size_t n, bool replace);

#endif
