/* store_sql.c — the SQL stores' algorithms, written once over their
 * primitives (see store_sql.h): the append with its version claims, the
 * guarded save of the balance sheet, its load from one snapshot, and the
 * schema decision at open. The SQL text is the backends'; the order of
 * the steps, what a conflict puts back and when to refuse a database are
 * here. It calls nothing but the primitives and store_base_fail: no write
 * group is opened or rolled back here, that is the caller's. */
#include <stdio.h>
#include "store_sql.h"

/* ---- the append ---- */

/* Moves ev's stream from ev->expected_version to the next: ERR_CONFLICT,
 * with nothing written, if it is not there. *key: the stream's number. */
static error_code claim(store *s, const store_sql_prims *p,
			const store_new_event *ev, int64_t *key)
{
	bool claimed = false;
	*key = 0;
	error_code rc = p->stream_find ? p->stream_find(s, ev, key) : ERR_OK;
	if (rc != ERR_OK)
		return rc;
	if (ev->expected_version == 0 && *key > 0)
		return ERR_CONFLICT;	/* it exists now */
	if (ev->expected_version > 0 && p->stream_find && *key == 0)
		return ERR_CONFLICT;	/* expected a stream that is not there */
	rc = p->stream_claim(s, ev, key, &claimed);
	if (rc != ERR_OK)
		return rc;
	return claimed ? ERR_OK : ERR_CONFLICT;
}

/* Puts back what claim did for evs[0..n), after a later stream of the
 * same append conflicted: versions step back, new streams go. */
static error_code unclaim(store *s, const store_sql_prims *p,
			  const store_new_event *evs, const int64_t *keys,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		error_code rc = p->stream_unclaim(s, &evs[i], keys[i]);
		if (rc != ERR_OK)
			return rc;
	}
	return ERR_OK;
}

error_code store_sql_append(store *s, const store_sql_prims *p,
			    const store_new_event *evs, size_t n,
			    int64_t time_ms, uint64_t *last_position)
{
	int64_t keys[STORE_SQL_APPEND_MAX];
	if (n > STORE_SQL_APPEND_MAX)	/* a transfer is the most */
		return store_base_fail(s, "an append of %zu events", n);
	/* Under the group's write lock nothing else moves, so a conflict can
	 * put back what this append claimed and leave the group as it was. */
	for (size_t i = 0; i < n; i++) {
		error_code rc = claim(s, p, &evs[i], &keys[i]);
		/* a stream claimed earlier in this append is not checked:
		 * that claim moved its row past its events */
		if (rc == ERR_CONFLICT && p->stream_check && keys[i] > 0 &&
		    (i == 0 || keys[0] != keys[i]))
			rc = p->stream_check(s, &evs[i], keys[i]);
		if (rc == ERR_CONFLICT)	/* put back, or give up the group */
			rc = unclaim(s, p, evs, keys, i) == ERR_OK ? ERR_CONFLICT
								 : ERR_STORAGE;
		if (rc != ERR_OK)
			return rc;
	}
	uint64_t position = 0;
	for (size_t i = 0; i < n; i++) {
		error_code rc = p->event_add(s, &evs[i], keys[i], time_ms,
					     &position);
		if (rc != ERR_OK)
			return rc;	/* half an append: the caller drops the group */
	}
	*last_position = position;
	return ERR_OK;
}

/* ---- the balance sheet ---- */

error_code store_sql_sheet_save(store *s, const store_sql_prims *p,
				uint64_t from, uint64_t to,
				const sheet_store_row *rows, size_t n,
				bool replace)
{
	/* A second shell's refresh waits for this group to commit (its write
	 * lock, or the row lock the move takes), then finds it moved. */
	bool moved = false;
	error_code rc = p->checkpoint_move(s, from, to, &moved);
	if (rc != ERR_OK)
		return rc;
	if (!moved) {
		/* nothing written: the group is as it was; another shell moved
		 * the checkpoint, unless it is not there at all */
		uint64_t at;
		rc = p->checkpoint(s, &at);
		return rc == ERR_OK ? ERR_CONFLICT : rc;
	}
	if (replace && (rc = p->balances_clear(s)) != ERR_OK)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = p->balance_put(s, &rows[i])) != ERR_OK)
			return rc;
	return ERR_OK;
}

error_code store_sql_sheet_load(store *s, const store_sql_prims *p,
				uint64_t *checkpoint, sheet_store_row_fn fn,
				void *ctx)
{
	/* The checkpoint and the rows must come from one snapshot: another
	 * shell's refresh may commit between two reads. A group already is
	 * one; otherwise a read transaction makes one. */
	bool snapshot = !s->in_group;
	error_code rc = snapshot ? p->snapshot_begin(s) : ERR_OK;
	if (rc != ERR_OK)
		return rc;
	rc = p->checkpoint(s, checkpoint);
	if (rc == ERR_OK)
		rc = p->balances(s, fn, ctx);
	return snapshot ? p->snapshot_end(s, rc) : rc;
}

/* ---- the schema ---- */

/* Reads before it writes anything, so a database that is not ours is left
 * exactly as it was. A new one is made under the backend's lock, after a
 * second look: another program opening it at the same time may have made
 * it meanwhile. */
bool store_sql_schema(store *s, const store_sql_prims *p, bool *made,
		      char *why, size_t why_len)
{
	store_sql_found found = STORE_SQL_FOUND_OTHER;
	store_sql_outcome how = STORE_SQL_FAILED;
	int64_t version = 0;
	bool locked = false;
	*made = false;
	for (;;) {
		if (p->schema_read(s, &found, &version, why, why_len) != ERR_OK)
			goto end;
		if (found != STORE_SQL_FOUND_EMPTY || locked)
			break;
		if (p->schema_lock(s, why, why_len) != ERR_OK)
			goto end;
		locked = true;	/* and look again */
	}
	if (found == STORE_SQL_FOUND_EMPTY) {
		if (p->schema_create(s, why, why_len) != ERR_OK)
			goto end;
		how = STORE_SQL_CREATED;
	} else if (found == STORE_SQL_FOUND_OTHER) {
		how = STORE_SQL_REFUSED;
	} else if (version > p->schema_version) {
		snprintf(why, why_len, "ledger schema version %lld is newer than "
			 "this simplecqrs knows (%d)", (long long)version,
			 p->schema_version);
		how = STORE_SQL_REFUSED;
	} else {
		how = STORE_SQL_USED;
	}
end:;
	error_code rc = p->schema_end(s, locked, how, why, why_len);
	if (rc != ERR_OK || (how != STORE_SQL_USED && how != STORE_SQL_CREATED))
		return false;
	*made = how == STORE_SQL_CREATED;
	return true;
}
