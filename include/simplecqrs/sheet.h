/* sheet.h — the balance sheet: the read side's projection.
 *
 * It holds a balance per account as of its checkpoint, a store position. It
 * changes only by sheet_refresh (apply exactly the events after the
 * checkpoint) or sheet_rebuild (start from nothing and replay the store),
 * never by a command, so it lags the store until asked to catch up. */
#ifndef SIMPLECQRS_SHEET_H
#define SIMPLECQRS_SHEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simplecqrs/error.h"
#include "simplecqrs/sheet_store.h"
#include "simplecqrs/store.h"

typedef struct sheet sheet;

typedef struct sheet_row {
	const char *account;	/* owned by the sheet */
	int64_t balance;
} sheet_row;

/* kept: where the store that this sheet is refreshed from keeps it
 * (sheet_store_of that store), or NULL when it keeps none: then the sheet
 * lives only in the process. */
sheet *sheet_new(sheet_store *kept);
void sheet_free(sheet *sh);

/* Applies the events after the checkpoint, moving it past each; *applied
 * counts them. In a store that keeps the sheet, the changed rows and the new
 * checkpoint are saved with the store's next commit; if another shell
 * refreshed first, the refresh starts again from its sheet (ERR_CONFLICT
 * after a few tries). On failure the sheet stays consistent at the last
 * event it applied. */
error_code sheet_refresh(sheet *sh, store *s, uint64_t *applied);
/* Forgets everything and replays the whole store (and replaces the kept
 * sheet). On failure the sheet is as it was before. */
error_code sheet_rebuild(sheet *sh, store *s, uint64_t *applied);
/* Makes this the store's kept sheet, if it keeps one and another shell
 * moved it (or it was never read): queries call it first. */
error_code sheet_sync(sheet *sh);

/* How many events the store holds past the checkpoint, after sheet_sync:
 * the one "how far behind" that status, balances and the prompt show. */
error_code sheet_behind(sheet *sh, store *s, uint64_t *behind);

uint64_t sheet_checkpoint(const sheet *sh);
size_t sheet_count(const sheet *sh);
/* false when the sheet has not seen the account. */
bool sheet_balance(const sheet *sh, const char *account, int64_t *balance);
/* All rows sorted by account id, bytewise. The caller frees the array (not
 * the strings, which the sheet owns until it changes or is freed). */
sheet_row *sheet_sorted(const sheet *sh, size_t *n);

#endif
