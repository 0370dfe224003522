/* store_backup.c — store_backup: a consistent copy of a whole ledger in a
 * new SQLite ledger file. The sqlite store copies itself (its backup op,
 * SQLite's online backup); any other store is read through the public
 * calls (the kept sheet first, then the head, then every event up to it)
 * and written through the sqlite backend's ledger-file writer. Above
 * store.c and sheet_store.c: nothing below calls it. */
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "simplecqrs/account.h"
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"

#define COPY_BATCH 4096		/* events the copy reads per call */

#if HAVE_SQLITE

typedef struct copier {
	store *src;
	store_sqlite_file *dst;
	idmap *names;		/* stream name -> slot; its id is slot + 1 */
	uint64_t *versions;	/* by slot: the last version copied */
	int64_t *balances;	/* by slot: what its events add up to */
	size_t cap;
	uint64_t head, last, count, seen;
	error_code err;		/* ERR_STORAGE: the source is wrong;
				   ERR_BACKUP_FAILED: the copy failed */
} copier;

static int copy_event(void *ctx, const store_event *ev)
{
	copier *c = ctx;
	c->seen++;
	if (ev->position > c->head)
		return 1;	/* written after the backup began */
	bool added;
	uint32_t slot = idmap_intern(c->names, ev->stream, strlen(ev->stream),
				     &added);
	if (slot >= c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->versions = xreallocarray(c->versions, c->cap, sizeof *c->versions);
		c->balances = xreallocarray(c->balances, c->cap, sizeof *c->balances);
	}
	if (added) {
		c->versions[slot] = 0;
		c->balances[slot] = 0;
	}
	if (ev->position <= c->last || ev->version != c->versions[slot] + 1 ||
	    !account_next_balance(c->balances[slot], ev->type, ev->amount,
				  &c->balances[slot])) {
		store_base_fail(c->src, "event %llu is out of order in its stream "
				"or the log, or takes its balance out of range",
				(unsigned long long)ev->position);
		c->err = ERR_STORAGE;
		return 1;
	}
	c->err = store_sqlite_file_event(c->dst, ev, (int64_t)slot + 1);
	if (c->err != ERR_OK)
		return 1;
	c->versions[slot] = ev->version;
	c->last = ev->position;
	c->count++;
	return 0;
}

static int copy_balance(void *ctx, const char *account, int64_t balance)
{
	copier *c = ctx;
	c->err = store_sqlite_file_balance(c->dst, account, balance);
	return c->err != ERR_OK;
}

/* The sheet first, then the head: a sheet is a fold of the events up to
 * its checkpoint, and the log only grows, so every event it counted is at
 * or below the head read after it. Then the events to the head, then the
 * streams they name, each with the balance its events add up to. */
static error_code copy_all(copier *c, uint64_t *checkpoint)
{
	sheet_store *kept = sheet_store_of(c->src);
	error_code rc = ERR_OK;
	*checkpoint = 0;
	if ((kept && (rc = sheet_store_load(kept, checkpoint, copy_balance,
					    c)) != ERR_OK) ||
	    c->err != ERR_OK || (rc = store_head(c->src, &c->head)) != ERR_OK)
		return rc;
	if (*checkpoint > c->head)
		return store_base_fail(c->src, "the balance sheet's checkpoint "
				       "%llu is past the last event %llu",
				       (unsigned long long)*checkpoint,
				       (unsigned long long)c->head);
	do {
		c->seen = 0;
		rc = store_read_all(c->src, c->last, COPY_BATCH, copy_event, c);
	} while (rc == ERR_OK && c->err == ERR_OK && c->seen == COPY_BATCH &&
		 c->last < c->head);
	for (uint32_t i = 0; rc == ERR_OK && c->err == ERR_OK &&
			     i < idmap_count(c->names); i++)
		c->err = store_sqlite_file_stream(c->dst, (int64_t)i + 1,
						  idmap_key(c->names, i),
						  c->versions[i], c->balances[i]);
	return rc;
}

static error_code copy_store(store *src, const char *path, char **abs,
			     uint64_t *events)
{
	copier c = { .src = src, .err = ERR_OK };
	error_code rc = store_sqlite_file_new(src, path, &c.dst);
	if (rc != ERR_OK)
		return rc;
	c.names = idmap_new();
	uint64_t checkpoint;
	rc = copy_all(&c, &checkpoint);
	if (rc == ERR_OK)
		rc = c.err;
	idmap_free(c.names);
	free(c.versions);
	free(c.balances);
	*events = c.count;
	if (rc == ERR_OK)
		return store_sqlite_file_finish(c.dst, checkpoint, abs);
	store_sqlite_file_abort(c.dst);
	return rc;
}

#endif

error_code store_backup(store *s, const char *path, char **abs_path,
			uint64_t *events)
{
	*abs_path = NULL;
	*events = 0;
	error_code rc = store_commit_early(s);	/* the copy has what was shown */
	if (rc != ERR_OK)
		return rc;
	if (s->ops->backup)
		return s->ops->backup(s, path, abs_path, events);
#if HAVE_SQLITE
	return copy_store(s, path, abs_path, events);
#else
	(void)path;
	store_base_fail(s, "this build has no SQLite support, so no backup file "
			"(rebuild with SQLite's headers installed)");
	return ERR_BACKUP_FAILED;
#endif
}
