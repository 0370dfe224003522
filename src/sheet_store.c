/* sheet_store.c — the kept balance sheet's calls (sheet_store.h), each
 * forwarded to the backend's sheet_store_ops. What a load hands back is
 * checked here before the sheet sees it: ids, balances never below 0, and
 * a checkpoint not past the last event. A save joins the store's write
 * group, and a save that fails other than by a conflict loses the group. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "simplecqrs/parse.h"
#include "store_impl.h"

#define DAMAGED "damaged ledger: "

sheet_store *sheet_store_of(store *s)
{
	if (s->ops->sheet == NULL)
		return NULL;
	s->kept.owner = s;
	return &s->kept;
}

error_code sheet_store_checkpoint(sheet_store *k, uint64_t *checkpoint)
{
	*checkpoint = 0;
	return k->owner->ops->sheet->checkpoint(k->owner, checkpoint);
}

typedef struct checked_rows {
	sheet_store_row_fn fn;
	void *ctx;
	bool bad;
	char why[sizeof ((store *)0)->errmsg];	/* set when bad */
} checked_rows;

static int damaged(checked_rows *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int damaged(checked_rows *r, const char *fmt, ...)
{
	size_t n = strlen(DAMAGED);
	memcpy(r->why, DAMAGED, n);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why + n, sizeof r->why - n, fmt, ap);
	va_end(ap);
	r->bad = true;
	return 1;
}

static int check_row(void *ctx, const char *account, int64_t balance)
{
	checked_rows *r = ctx;
	char idbuf[160];
	if (account == NULL || !parse_account(account))
		return damaged(r, "the kept balance sheet has %s",
			       store_quoted_id(account, idbuf, sizeof idbuf));
	if (balance < 0)
		return damaged(r, "the kept balance sheet has %s at %lld; "
			       "a balance is never below 0", account,
			       (long long)balance);
	return r->fn(r->ctx, account, balance);
}

error_code sheet_store_load(sheet_store *k, uint64_t *checkpoint,
			    sheet_store_row_fn fn, void *ctx)
{
	store *s = k->owner;
	*checkpoint = 0;
	checked_rows r = { .fn = fn, .ctx = ctx };
	error_code rc = s->ops->sheet->load(s, checkpoint, check_row, &r);
	if (rc == ERR_OK && r.bad)
		return store_base_fail(s, "%s", r.why);
	uint64_t head;
	if (rc == ERR_OK && (rc = store_head(s, &head)) == ERR_OK &&
	    *checkpoint > head)
		rc = store_base_fail(s, DAMAGED "the kept balance sheet's "
				     "checkpoint %llu is past the last event "
				     "(position %llu)",
				     (unsigned long long)*checkpoint,
				     (unsigned long long)head);
	return rc;
}

error_code sheet_store_save(sheet_store *k, uint64_t from, uint64_t to,
			    const sheet_store_row *rows, size_t n, bool replace)
{
	store *s = k->owner;
	error_code rc = store_group_begin(s);
	if (rc != ERR_OK)
		return rc;
	return store_group_wrote(s, s->ops->sheet->save(s, from, to, rows, n,
						       replace));
}
