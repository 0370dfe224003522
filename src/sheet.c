/* sheet.c — the balance sheet projection.
 *
 * Balances live in an array indexed by interned account id; the checkpoint
 * is the position of the last event applied, never a clock, so a refresh
 * applies exactly the events after it, each once. Sorting happens only when
 * someone asks for the sorted rows.
 *
 * A store that keeps the sheet (sqlite, postgresql: the sheet_store that
 * sheet_new was given) holds the truth; this is its copy in memory. A
 * refresh starts from the kept checkpoint (reloading the copy if another
 * shell moved it), applies the new events, and saves the rows they
 * changed with the new checkpoint, only if the kept one has not moved since:
 * so however many shells refresh at once, each event is applied once. */
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/account.h"
#include "simplecqrs/idmap.h"
#include "simplecqrs/sheet.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"

#define REFRESH_BATCH 4096	/* events asked of the store per read */
#define SAVE_RETRIES 5		/* refreshes lost to other shells, at most */

struct sheet {
	idmap *ids;
	int64_t *balances;	/* by interned id */
	uint32_t cap;
	uint64_t checkpoint;
	uint32_t *by_key;	/* store's stream_key -> interned id + 1 */
	uint32_t keys;		/* entries in by_key */
	sheet_store *kept;	/* NULL: the store keeps no sheet */
	/* only for a store that keeps the sheet: */
	bool loaded;		/* this copy is the kept one as of checkpoint */
	bool track;		/* note which rows a refresh changes */
	uint8_t *changed;	/* by interned id: in dirty[] */
	uint32_t *dirty;	/* ids changed since the last save */
	uint32_t ndirty;
};

sheet *sheet_new(sheet_store *kept)
{
	sheet *sh = xcalloc(1, sizeof *sh);
	sh->ids = idmap_new();
	sh->kept = kept;
	return sh;
}

void sheet_free(sheet *sh)
{
	if (sh == NULL)
		return;
	idmap_free(sh->ids);
	free(sh->balances);
	free(sh->by_key);
	free(sh->changed);
	free(sh->dirty);
	free(sh);
}

/* Forgets every row: the state of a new sheet. */
static void sheet_clear(sheet *sh)
{
	sheet_store *kept = sh->kept;
	idmap_free(sh->ids);
	free(sh->balances);
	free(sh->by_key);
	free(sh->changed);
	free(sh->dirty);
	memset(sh, 0, sizeof *sh);
	sh->ids = idmap_new();
	sh->kept = kept;
}

typedef struct batch {
	sheet *sh;
	store *s;		/* for the message of a broken rule */
	uint64_t applied;
	size_t seen;
	error_code err;
} batch;

/* The sheet's index of the event's account, through the store's stream key
 * when it gives one (an array look-up), else by hashing the id. */
static uint32_t account_index(sheet *sh, const store_event *ev)
{
	uint32_t key = ev->stream_key;
	if (key != 0 && key < sh->keys && sh->by_key[key] != 0)
		return sh->by_key[key] - 1;
	bool added;
	uint32_t idx = idmap_intern(sh->ids, ev->stream, strlen(ev->stream),
				    &added);
	if (idx >= sh->cap) {
		uint32_t old = sh->cap;
		sh->cap = sh->cap ? sh->cap * 2 : 64;
		sh->balances = xreallocarray(sh->balances, sh->cap,
					     sizeof *sh->balances);
		if (sh->track) {
			sh->changed = xreallocarray(sh->changed, sh->cap, 1);
			memset(sh->changed + old, 0, sh->cap - old);
			sh->dirty = xreallocarray(sh->dirty, sh->cap,
						  sizeof *sh->dirty);
		}
	}
	if (added)
		sh->balances[idx] = 0;
	/* Keys are dense (1, 2, 3, …) in every store; a far larger one (a
	 * table edited by hand) is hashed every time rather than given a
	 * huge array. */
	if (key != 0 && key < (1u << 24)) {
		if (key >= sh->keys) {
			uint32_t n = key < 32 ? 64 : key * 2;
			sh->by_key = xreallocarray(sh->by_key, n, sizeof *sh->by_key);
			memset(sh->by_key + sh->keys, 0,
			       (n - sh->keys) * sizeof *sh->by_key);
			sh->keys = n;
		}
		sh->by_key[key] = idx + 1;
	}
	return idx;
}

static int apply_event(void *ctx, const store_event *ev)
{
	batch *b = ctx;
	sheet *sh = b->sh;
	b->seen++;
	if (ev->position <= sh->checkpoint) {	/* never apply twice */
		b->err = store_base_fail(b->s, "damaged ledger: position %llu "
				    "(account %s) is not past the checkpoint %llu",
				    (unsigned long long)ev->position, ev->stream,
				    (unsigned long long)sh->checkpoint);
		return 1;
	}
	uint32_t idx = account_index(sh, ev);	/* may move sh->balances */
	int64_t *bal = &sh->balances[idx];
	int64_t before = *bal;
	if (!account_next_balance(before, ev->type, ev->amount, bal)) {
		b->err = store_fail_balance(b->s, ev, before);
		return 1;
	}
	if (sh->track && !sh->changed[idx]) {
		sh->changed[idx] = 1;
		sh->dirty[sh->ndirty++] = idx;
	}
	sh->checkpoint = ev->position;
	b->applied++;
	return 0;
}

/* Applies every event after the checkpoint, in batches. */
static error_code catch_up(sheet *sh, store *s, uint64_t *applied)
{
	batch b = { .sh = sh, .s = s };
	error_code rc;
	do {
		b.seen = 0;
		rc = store_read_all(s, sh->checkpoint, REFRESH_BATCH, apply_event, &b);
		if (rc == ERR_OK)
			rc = b.err;
	} while (rc == ERR_OK && b.seen == REFRESH_BATCH);
	*applied = b.applied;
	return rc;
}

static int load_row(void *ctx, const char *account, int64_t balance)
{
	sheet *sh = ctx;
	store_event ev = { .stream = account };
	uint32_t idx = account_index(sh, &ev);	/* may move sh->balances */
	sh->balances[idx] = balance;
	return 0;
}

/* Makes this copy the kept sheet, with change tracking on. */
static error_code reload(sheet *sh)
{
	uint64_t checkpoint;
	sheet_clear(sh);
	sh->track = true;
	error_code rc = sheet_store_load(sh->kept, &checkpoint, load_row, sh);
	if (rc != ERR_OK) {
		sheet_clear(sh);
		return rc;
	}
	sh->checkpoint = checkpoint;
	sh->loaded = true;
	return ERR_OK;
}

error_code sheet_sync(sheet *sh)
{
	if (sh->kept == NULL)
		return ERR_OK;
	uint64_t kept;
	error_code rc = sheet_store_checkpoint(sh->kept, &kept);
	if (rc != ERR_OK)
		return rc;
	return sh->loaded && kept == sh->checkpoint ? ERR_OK : reload(sh);
}

/* Saves the rows changed since the last save, moving the kept checkpoint
 * from `from`; all rows, replacing the kept ones, with replace. */
static error_code save(sheet *sh, uint64_t from, bool replace)
{
	uint32_t n = replace ? idmap_count(sh->ids) : sh->ndirty;
	sheet_store_row *rows = xreallocarray(NULL, n ? n : 1, sizeof *rows);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t idx = replace ? i : sh->dirty[i];
		rows[i] = (sheet_store_row){ idmap_key(sh->ids, idx),
					     sh->balances[idx] };
	}
	error_code rc = sheet_store_save(sh->kept, from, sh->checkpoint, rows, n,
					 replace);
	free(rows);
	for (uint32_t i = 0; i < sh->ndirty; i++)
		sh->changed[sh->dirty[i]] = 0;
	sh->ndirty = 0;
	if (rc != ERR_OK)
		sh->loaded = false;	/* not the kept sheet: reload next time */
	return rc;
}

/* sheet_refresh for a store that keeps the sheet. Kept out of line so that
 * the memory store's refresh, which may follow every command, does not pay
 * for this loop's registers. */
static __attribute__((noinline)) error_code
refresh_kept(sheet *sh, store *s, uint64_t *applied)
{
	for (unsigned attempt = 0;; attempt++) {
		error_code rc = sheet_sync(sh);
		uint64_t from = sh->checkpoint;
		if (rc == ERR_OK)
			rc = catch_up(sh, s, applied);
		if (rc == ERR_OK && sh->checkpoint != from)	/* else nothing
								   to save */
			rc = save(sh, from, false);
		else if (rc != ERR_OK)
			sh->loaded = false;
		if (rc != ERR_CONFLICT || attempt == SAVE_RETRIES)
			return rc;
	}
}

error_code sheet_refresh(sheet *sh, store *s, uint64_t *applied)
{
	if (sh->kept == NULL)
		return catch_up(sh, s, applied);
	return refresh_kept(sh, s, applied);
}

error_code sheet_rebuild(sheet *sh, store *s, uint64_t *applied)
{
	for (unsigned attempt = 0;; attempt++) {
		uint64_t kept = 0;
		error_code rc = sh->kept ? sheet_store_checkpoint(sh->kept, &kept)
					 : ERR_OK;
		if (rc != ERR_OK)
			return rc;
		sheet *fresh = sheet_new(sh->kept);
		fresh->track = sh->kept != NULL;
		rc = catch_up(fresh, s, applied);
		if (rc == ERR_OK && sh->kept)
			rc = save(fresh, kept, true);
		if (rc == ERR_OK) {
			fresh->loaded = true;
			sheet old = *sh;
			*sh = *fresh;
			*fresh = old;
		}
		sheet_free(fresh);
		if (rc != ERR_CONFLICT || attempt == SAVE_RETRIES)
			return rc;
	}
}

uint64_t sheet_checkpoint(const sheet *sh)
{
	return sh->checkpoint;
}

size_t sheet_count(const sheet *sh)
{
	return idmap_count(sh->ids);
}

bool sheet_balance(const sheet *sh, const char *account, int64_t *balance)
{
	uint32_t idx = idmap_find(sh->ids, account, strlen(account));
	if (idx == IDMAP_NONE)
		return false;
	*balance = sh->balances[idx];
	return true;
}

static int by_account(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: bytewise, as SPEC asks */
	return strcmp(((const sheet_row *)a)->account,
		      ((const sheet_row *)b)->account);
}

sheet_row *sheet_sorted(const sheet *sh, size_t *n)
{
	*n = idmap_count(sh->ids);
	sheet_row *rows = xreallocarray(NULL, *n, sizeof *rows);
	for (uint32_t i = 0; i < *n; i++)
		rows[i] = (sheet_row){ idmap_key(sh->ids, i), sh->balances[i] };
	qsort(rows, *n, sizeof *rows, by_account);
	return rows;
}

error_code sheet_behind(sheet *sh, store *s, uint64_t *behind)
{
	*behind = 0;
	error_code rc = sheet_sync(sh);
	if (rc != ERR_OK)
		return rc;
	return store_count_after(s, sh->checkpoint, behind);
}
