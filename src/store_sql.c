/* store_sql.c — the SQL stores' algorithms, written once over their
 * primitives (see store_sql.h): the writer's table that an append checks
 * its expected versions against in memory (caught up at each group's
 * start on what other shells wrote, each moved stream's row written once,
 * at the group's flush), the guarded save of the balance sheet, its load
 * from one snapshot, and the schema decision at open. The SQL text is the
 * backends'; the order of the steps, what is checked before anything is
 * written (a conflict writes nothing) and when to refuse a database are
 * here. It calls nothing but the primitives and store_base_fail: no write
 * group is opened or rolled back here, that is the caller's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/account.h"
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"
#include "store_sql.h"

/* ---- the writer's table ----
 *
 * Under the write lock nobody else appends, so once a group has caught up
 * with what others wrote before it, what this table says of a stream is
 * what its row and its events say: an append checks its expected version
 * here, decides the event's position (head + 1) and version, and writes
 * (or queues) the event's row. Each stream's row (version and balance) and the sheet's rows
 * are written once per group, by flush, before the commit. A rollback
 * forgets the whole table: rows are read again when next needed. */

#define CATCHUP_MAX 4096	/* more events from others: forget, reread */
#define COMPLETE_MAX 65536	/* at most so many events: read every stream */
#define KEY_ARRAY_MAX (1 << 24)	/* keys below it: a plain array */

enum { KNOWN = 1, MOVED = 2 };

struct store_sql_writer {
	idmap *names;		/* stream name -> slot */
	store_sql_stream *st;	/* by slot */
	uint8_t *flags;		/* by slot: KNOWN, MOVED */
	uint32_t cap;
	uint32_t *slot_of_key;	/* by key < key_cap: slot + 1, 0 if none */
	int64_t key_cap;
	/* keys of KEY_ARRAY_MAX or more (given by hand): by their digits */
	idmap *big_keys;	/* key's digits -> index */
	uint32_t *big_slot;	/* by index: slot + 1, 0 if none */
	uint32_t big_cap;
	uint32_t *moved;	/* slots MOVED in this group */
	size_t nmoved, moved_cap;
	bool in_group;
	bool complete;		/* every stream is here: one not here has no
				   row and no events */
	uint64_t head;		/* in a group: the last position */
	uint64_t seen;		/* the head after this shell's last group */
	bool seen_valid;
	/* a flush of this group failed (one in a read, the sheet's load, too):
	 * what is written of it is not known, so every later write of the
	 * group, and its commit, fails with that first failure's reason */
	bool broken;
	char broken_why[256];
	/* the sheet's save, coalesced: the first save of a group moved the
	 * checkpoint in the backend; the rest is here until flush */
	bool sheet_saved;	/* in this group */
	bool sheet_replace;
	uint64_t sheet_to;
	idmap *row_ids;		/* account -> row */
	sheet_store_row *rows;
	size_t nrows, rows_cap;
};

store_sql_writer *store_sql_writer_new(void)
{
	store_sql_writer *w = xcalloc(1, sizeof *w);
	w->names = idmap_new();
	w->row_ids = idmap_new();
	w->big_keys = idmap_new();
	return w;
}

static void forget_rows(store_sql_writer *w)
{
	idmap_free(w->row_ids);
	w->row_ids = idmap_new();
	w->nrows = 0;
	w->sheet_saved = false;
	w->sheet_replace = false;
}

/* Forgets every stream (not the sheet's rows). */
static void forget_streams(store_sql_writer *w)
{
	idmap_free(w->names);
	w->names = idmap_new();
	if (w->slot_of_key)
		memset(w->slot_of_key, 0, (size_t)w->key_cap * sizeof *w->slot_of_key);
	idmap_free(w->big_keys);
	w->big_keys = idmap_new();
	w->nmoved = 0;
	w->complete = false;
}

void store_sql_writer_free(store_sql_writer *w)
{
	if (w == NULL)
		return;
	idmap_free(w->names);
	idmap_free(w->row_ids);
	free(w->st);
	free(w->flags);
	free(w->slot_of_key);
	idmap_free(w->big_keys);
	free(w->big_slot);
	free(w->moved);
	free(w->rows);
	free(w);
}

/* A key past the array's (one given by hand), as the big_keys map's name. */
static size_t key_digits(char *buf, size_t size, int64_t key)
{
	return (size_t)snprintf(buf, size, "%lld", (long long)key);
}

static void note_key(store_sql_writer *w, int64_t key, uint32_t slot)
{
	if (key <= 0)
		return;
	if (key >= KEY_ARRAY_MAX) {	/* a key set by hand: no array */
		char d[24];
		size_t len = key_digits(d, sizeof d, key);
		uint32_t i = idmap_intern(w->big_keys, d, len, NULL);
		if (i >= w->big_cap) {
			uint32_t n = w->big_cap ? w->big_cap * 2 : 16;
			w->big_slot = xreallocarray(w->big_slot, n,
						    sizeof *w->big_slot);
			w->big_cap = n;
		}
		w->big_slot[i] = slot + 1;
		return;
	}
	if (key >= w->key_cap) {
		int64_t n = key < 512 ? 1024 : key * 2;
		w->slot_of_key = xreallocarray(w->slot_of_key, (size_t)n,
					       sizeof *w->slot_of_key);
		memset(w->slot_of_key + w->key_cap, 0,
		       (size_t)(n - w->key_cap) * sizeof *w->slot_of_key);
		w->key_cap = n;
	}
	w->slot_of_key[key] = slot + 1;
}

/* The slot of a stream, made (not KNOWN yet) if new. */
static uint32_t slot_for(store_sql_writer *w, const char *name, size_t len)
{
	bool added = false;
	uint32_t slot = idmap_intern(w->names, name, len, &added);
	if (slot >= w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		w->st = xreallocarray(w->st, w->cap, sizeof *w->st);
		w->flags = xreallocarray(w->flags, w->cap, sizeof *w->flags);
	}
	if (added) {
		w->st[slot] = (store_sql_stream){ .name = idmap_key(w->names, slot),
						  .len = len };
		w->flags[slot] = 0;
	}
	return slot;
}

/* The slot the table gave key, or IDMAP_NONE. */
static uint32_t key_slot(const store_sql_writer *w, int64_t key)
{
	if (key <= 0)
		return IDMAP_NONE;
	if (key >= KEY_ARRAY_MAX) {
		char d[24];
		size_t len = key_digits(d, sizeof d, key);
		uint32_t i = idmap_find(w->big_keys, d, len);
		return i == IDMAP_NONE || w->big_slot[i] == 0 ? IDMAP_NONE
							     : w->big_slot[i] - 1;
	}
	if (key >= w->key_cap || w->slot_of_key[key] == 0)
		return IDMAP_NONE;
	return w->slot_of_key[key] - 1;
}

/* The known slot a caller's key hint names, if it names this id. */
static uint32_t slot_of_hint(const store_sql_writer *w, uint32_t key,
			     const char *name, size_t len)
{
	uint32_t slot = key_slot(w, key);
	return slot != IDMAP_NONE && idmap_is(w->names, slot, name, len)
	       ? slot : IDMAP_NONE;
}

/* The stream's entry, read from its row when the table does not know it. */
static error_code stream_get(store *s, const store_sql_prims *p,
			     store_sql_writer *w, const char *name, size_t len,
			     uint32_t hint, store_sql_stream **out)
{
	uint32_t slot = slot_of_hint(w, hint, name, len);
	if (slot == IDMAP_NONE)
		slot = slot_for(w, name, len);
	store_sql_stream *st = &w->st[slot];
	if (!(w->flags[slot] & KNOWN) && w->complete && w->in_group) {
		st->key = 0;	/* a new stream: no row to read */
		st->version = 0;
		st->balance = 0;
		st->stored = false;
		w->flags[slot] = KNOWN;
	} else if (!(w->flags[slot] & KNOWN)) {
		error_code rc = p->stream_load(s, st);
		if (rc != ERR_OK)
			return rc;
		if (st->version > INT64_MAX || st->balance < 0 ||
		    (st->version == 0 && (st->balance != 0 || st->stored))) {
			store_base_fail(s, "damaged ledger: account %s's row "
					"says version %llu, balance %lld",
					st->name, (unsigned long long)st->version,
					(long long)st->balance);
			return ERR_STORAGE;
		}
		/* a stream with no row is not kept: another shell may make
		 * it, and the events of that catch-up name it by a key this
		 * table lacks */
		w->flags[slot] = st->stored ? KNOWN : 0;
		note_key(w, st->key, slot);
	}
	*out = st;
	return ERR_OK;
}

static uint32_t slot_of(const store_sql_writer *w, const store_sql_stream *st)
{
	return (uint32_t)(st - w->st);
}

typedef struct catchup {
	store *s;
	store_sql_writer *w;
	error_code rc;		/* ERR_STORAGE: a damaged ledger, errmsg says */
} catchup;

/* One event another shell wrote: a stream the table knows moves on with
 * it; one it does not know is read from its row when next asked. An event
 * of neither type is a damaged ledger (as store.c's checked reads say it),
 * not a credit. */
static int catch_up(void *ctx, int64_t key, const char *name, uint64_t position,
		    uint64_t version, event_type type, int64_t amount)
{
	catchup *c = ctx;
	store_sql_writer *w = c->w;
	uint32_t slot = key_slot(w, key);
	if (slot == IDMAP_NONE && name)
		slot = idmap_find(w->names, name, strlen(name));
	if (type != EVENT_CREDITED && type != EVENT_DEBITED) {
		char number[40];
		const char *id = name ? name : slot != IDMAP_NONE
				 ? w->st[slot].name : NULL;
		if (id == NULL) {	/* named by its stream number alone */
			snprintf(number, sizeof number, "number %lld",
				 (long long)key);
			id = number;
		}
		store_base_fail(c->s, "damaged ledger: account %.64s version %llu "
				"(position %llu) has type %d, neither "
				"AccountCredited (1) nor AccountDebited (2)", id,
				(unsigned long long)version,
				(unsigned long long)position, (int)type);
		c->rc = ERR_STORAGE;
		return 1;
	}
	if ((slot == IDMAP_NONE || !(w->flags[slot] & KNOWN)) && w->complete &&
	    name && version == 1 && type == EVENT_CREDITED && amount > 0) {
		/* a stream another shell began: the table stays complete */
		slot = slot_for(w, name, strlen(name));
		w->st[slot].key = key;
		w->st[slot].version = 1;
		w->st[slot].balance = amount;
		w->st[slot].stored = true;
		w->flags[slot] = KNOWN;
		note_key(w, key, slot);
		return 0;
	}
	if (slot == IDMAP_NONE || !(w->flags[slot] & KNOWN)) {
		w->complete = false;	/* a stream it never knew moved on */
		return 0;
	}
	store_sql_stream *st = &w->st[slot];
	if (version != st->version + 1 ||
	    !account_next_balance(st->balance, type, amount, &st->balance)) {
		w->flags[slot] = 0;	/* the row will say */
		w->complete = false;
	} else {
		st->version = version;
		st->stored = true;	/* known as new here, begun there */
	}
	return 0;
}

/* One stream row of streams_all, into the table. */
static int know(void *ctx, const store_sql_stream *row)
{
	store_sql_writer *w = ctx;
	uint32_t slot = slot_for(w, row->name, row->len);
	w->st[slot].key = row->key;
	w->st[slot].version = row->version;
	w->st[slot].balance = row->balance;
	w->st[slot].stored = row->stored;
	w->flags[slot] = KNOWN;
	note_key(w, row->key, slot);
	return 0;
}

error_code store_sql_begun(store *s, const store_sql_prims *p,
			   store_sql_writer *w)
{
	uint64_t head = 0;
	error_code rc = p->head(s, &head);
	if (rc != ERR_OK)
		return rc;
	uint64_t most = p->catchup_max ? p->catchup_max : CATCHUP_MAX;
	if (!w->seen_valid || head < w->seen || head - w->seen > most) {
		forget_streams(w);
	} else if (head != w->seen) {
		/* a stream known to have no row may have one now; a backend
		 * whose events_after names streams by key cannot say which
		 * (a stream without a row has no key yet): read again */
		for (uint32_t i = 0; i < idmap_count(w->names); i++)
			if ((w->flags[i] & KNOWN) && w->st[i].version == 0 &&
			    !w->st[i].stored && !w->complete)
				w->flags[i] = 0;
		catchup c = { .s = s, .w = w, .rc = ERR_OK };
		if ((rc = p->events_after(s, w->seen, catch_up, &c)) == ERR_OK)
			rc = c.rc;
		if (rc != ERR_OK) {
			forget_streams(w);
			return rc;
		}
	}
	if (!w->complete && p->streams_all && head <= COMPLETE_MAX) {
		forget_streams(w);
		if ((rc = p->streams_all(s, know, w)) != ERR_OK) {
			forget_streams(w);
			return rc;
		}
		w->complete = true;
	}
	w->in_group = true;
	w->broken = false;
	w->head = head;
	w->nmoved = 0;
	forget_rows(w);
	return ERR_OK;
}

/* A group whose flush failed fails every later write and its commit. */
static error_code broken(store *s, const store_sql_writer *w)
{
	return w->broken ? store_base_fail(s, "%s", w->broken_why) : ERR_OK;
}

error_code store_sql_flush(store *s, const store_sql_prims *p,
			   store_sql_writer *w)
{
	if (w->broken)
		return broken(s, w);
	if (w->nmoved == 0 && !w->sheet_saved)
		return ERR_OK;
	const store_sql_stream *stack[64];
	const store_sql_stream **list = w->nmoved <= 64 ? stack
					: xreallocarray(NULL, w->nmoved,
							sizeof(void *));
	for (size_t i = 0; i < w->nmoved; i++)
		list[i] = &w->st[w->moved[i]];
	store_sql_sheet_flush sheet = { .replace = w->sheet_replace,
					.checkpoint = w->sheet_to,
					.rows = w->rows, .n = w->nrows };
	error_code rc = p->flush(s, list, w->nmoved, w->sheet_saved ? &sheet
								  : NULL);
	if (list != stack)
		free(list);
	if (rc != ERR_OK) {
		w->broken = w->in_group;
		snprintf(w->broken_why, sizeof w->broken_why, "%s", s->errmsg);
		return rc;
	}
	for (size_t i = 0; i < w->nmoved; i++) {
		w->flags[w->moved[i]] &= (uint8_t)~MOVED;
		w->st[w->moved[i]].stored = true;
	}
	w->nmoved = 0;
	/* the sheet is written; a later save in this group starts anew,
	 * from the checkpoint now in the row (its lock still held) */
	bool saved = w->sheet_saved;
	uint64_t to = w->sheet_to;
	forget_rows(w);
	w->sheet_saved = saved;
	w->sheet_to = to;
	w->nrows = 0;
	return ERR_OK;
}

void store_sql_committed(store_sql_writer *w)
{
	w->in_group = false;
	w->broken = false;
	w->seen = w->head;
	w->seen_valid = true;
	forget_rows(w);
}

void store_sql_rolled_back(store_sql_writer *w)
{
	w->in_group = false;
	w->broken = false;
	w->seen_valid = false;
	forget_streams(w);
	forget_rows(w);
}

/* ---- the append ---- */

error_code store_sql_append(store *s, const store_sql_prims *p,
			    store_sql_writer *w, const store_new_event *evs,
			    size_t n, int64_t time_ms, uint64_t *last_position)
{
	store_sql_stream *st[STORE_SQL_APPEND_MAX];
	uint32_t slots[STORE_SQL_APPEND_MAX];
	int64_t balance[STORE_SQL_APPEND_MAX];
	if (n > STORE_SQL_APPEND_MAX || n == 0)	/* a transfer is the most */
		return store_base_fail(s, "an append of %zu events", n);
	if (!w->in_group)
		return store_base_fail(s, "an append outside a write group");
	if (w->broken)
		return broken(s, w);
	/* everything is checked before anything is written */
	for (size_t i = 0; i < n; i++) {
		const store_new_event *ev = &evs[i];
		size_t len = ev->stream_len ? ev->stream_len : strlen(ev->stream);
		uint32_t hint = ev->stream_key ? *ev->stream_key : 0;
		error_code rc = stream_get(s, p, w, ev->stream, len, hint, &st[i]);
		if (rc != ERR_OK)
			return rc;
		/* stream_get may have grown the table: earlier pointers move */
		slots[i] = slot_of(w, st[i]);
		for (size_t j = 0; j < i; j++)
			st[j] = &w->st[slots[j]];
		uint64_t version = st[i]->version;
		int64_t before = st[i]->balance;
		for (size_t j = 0; j < i; j++)	/* the same stream twice */
			if (st[j] == st[i]) {
				version++;
				before = balance[j];
			}
		if (version != ev->expected_version)
			return ERR_CONFLICT;
		if (!account_next_balance(before, ev->type, ev->amount,
					  &balance[i]))
			return store_base_fail(s, "an append would take account "
					       "%s's balance %lld %s %lld out of "
					       "0..9223372036854775807",
					       st[i]->name, (long long)before,
					       ev->type == EVENT_CREDITED ? "plus"
								   : "less",
					       (long long)ev->amount);
	}
	for (size_t i = 0; i < n; i++) {
		error_code rc = ERR_OK;
		if (st[i]->version == 0 && !st[i]->stored && p->stream_add &&
		    (rc = p->stream_add(s, st[i])) == ERR_OK)
			note_key(w, st[i]->key, slot_of(w, st[i]));
		store_sql_event e = { .stream = st[i], .position = w->head + 1,
				      .version = st[i]->version + 1,
				      .type = evs[i].type, .amount = evs[i].amount,
				      .time_ms = time_ms };
		if (rc == ERR_OK)
			rc = p->event_add(s, &e);
		if (rc != ERR_OK)
			return rc;	/* half an append: the caller drops the group */
		w->head++;
		st[i]->version++;
		st[i]->balance = balance[i];
		uint32_t slot = slot_of(w, st[i]);
		w->flags[slot] |= KNOWN;
		if (!(w->flags[slot] & MOVED)) {
			w->flags[slot] |= MOVED;
			if (w->nmoved == w->moved_cap) {
				w->moved_cap = w->moved_cap ? w->moved_cap * 2 : 256;
				w->moved = xreallocarray(w->moved, w->moved_cap,
							 sizeof *w->moved);
			}
			w->moved[w->nmoved++] = slot;
		}
		if (evs[i].stream_key && st[i]->key > 0 && st[i]->key < UINT32_MAX)
			*evs[i].stream_key = (uint32_t)st[i]->key;
	}
	*last_position = w->head;
	return ERR_OK;
}

error_code store_sql_stream_state(store *s, const store_sql_prims *p,
				  store_sql_writer *w, const char *stream,
				  size_t len, uint32_t *key, uint64_t *version,
				  int64_t *balance)
{
	store_sql_stream *st;
	store_sql_stream row = { .name = stream, .len = len };
	error_code rc;
	if (w->in_group) {
		rc = stream_get(s, p, w, stream, len, *key, &st);
	} else {	/* outside the lock the row is read, not kept */
		st = &row;
		rc = p->stream_load(s, st);
	}
	if (rc != ERR_OK)
		return rc;
	*version = st->version;
	*balance = st->balance;
	if (st->key > 0 && st->key < UINT32_MAX)
		*key = (uint32_t)st->key;
	return ERR_OK;
}

error_code store_sql_head(store *s, const store_sql_prims *p,
			  store_sql_writer *w, uint64_t *head)
{
	if (w->in_group) {
		*head = w->head;
		return ERR_OK;
	}
	return p->head(s, head);
}

bool store_sql_known(const store_sql_writer *w, const char *stream,
		     size_t len, uint64_t *version, bool *unflushed)
{
	if (!w->in_group)
		return false;
	uint32_t slot = idmap_find(w->names, stream, len);
	if (slot == IDMAP_NONE || !(w->flags[slot] & KNOWN))
		return false;
	*version = w->st[slot].version;
	*unflushed = w->flags[slot] & MOVED;
	return true;
}

/* ---- the balance sheet ---- */

error_code store_sql_sheet_save(store *s, const store_sql_prims *p,
				store_sql_writer *w, uint64_t from, uint64_t to,
				const sheet_store_row *rows, size_t n,
				bool replace)
{
	if (w->broken)
		return broken(s, w);
	if (!w->sheet_saved) {
		/* A second shell's refresh waits for this group to commit (its
		 * write lock, or the row lock the move takes), then finds it
		 * moved. */
		bool moved = false;
		error_code rc = p->checkpoint_move(s, from, to, &moved);
		if (rc != ERR_OK)
			return rc;
		if (!moved) {
			/* nothing written: the group is as it was; another shell
			 * moved the checkpoint, unless it is not there at all */
			uint64_t at;
			rc = p->checkpoint(s, &at);
			return rc == ERR_OK ? ERR_CONFLICT : rc;
		}
		w->sheet_saved = true;
	} else if (w->sheet_to != from) {
		return ERR_CONFLICT;	/* the row is locked: only ours moves it */
	}
	w->sheet_to = to;
	if (replace) {
		forget_rows(w);
		w->sheet_saved = true;
		w->sheet_to = to;
		w->sheet_replace = true;
	}
	for (size_t i = 0; i < n; i++) {
		bool added = false;
		const char *id = rows[i].account;
		uint32_t r = idmap_intern(w->row_ids, id, strlen(id), &added);
		if (added) {
			if (w->nrows == w->rows_cap) {
				w->rows_cap = w->rows_cap ? w->rows_cap * 2 : 256;
				w->rows = xreallocarray(w->rows, w->rows_cap,
							sizeof *w->rows);
			}
			w->rows[w->nrows++] = (sheet_store_row){
				idmap_key(w->row_ids, r), rows[i].balance };
		} else {
			w->rows[r].balance = rows[i].balance;
		}
	}
	return ERR_OK;
}

error_code store_sql_sheet_checkpoint(store *s, const store_sql_prims *p,
				      store_sql_writer *w, uint64_t *checkpoint)
{
	if (w->in_group && w->sheet_saved) {
		*checkpoint = w->sheet_to;
		return ERR_OK;
	}
	return p->checkpoint(s, checkpoint);
}

error_code store_sql_sheet_load(store *s, const store_sql_prims *p,
				store_sql_writer *w, uint64_t *checkpoint,
				sheet_store_row_fn fn, void *ctx)
{
	/* The checkpoint and the rows must come from one snapshot: another
	 * shell's refresh may commit between two reads. A group already is
	 * one (its queued rows written into it first); otherwise a read
	 * transaction makes one. */
	bool snapshot = !s->in_group;
	error_code rc = snapshot ? p->snapshot_begin(s) : store_sql_flush(s, p, w);
	if (rc != ERR_OK)	/* a failed flush broke the group (flush) */
		return rc;
	rc = p->checkpoint(s, checkpoint);
	if (rc == ERR_OK)
		rc = p->balances(s, fn, ctx);
	return snapshot ? p->snapshot_end(s, rc) : rc;
}

/* ---- the schema ---- */

/* Reads before it writes anything, so a database that is not ours is left
 * exactly as it was. A new one is made, and an old one upgraded, under the
 * backend's lock, after a second look: another program opening it at the
 * same time may have done so meanwhile. */
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
		bool old = found == STORE_SQL_FOUND_OURS &&
			   version < p->schema_version;
		if ((found != STORE_SQL_FOUND_EMPTY && !old) || locked)
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
	} else if (version < p->schema_version) {
		if (p->schema_upgrade(s, version, why, why_len) != ERR_OK) {
			/* schema_end rolls the upgrade's one transaction back */
			char inner[512];
			snprintf(inner, sizeof inner, "%s", why);
			snprintf(why, why_len, "cannot upgrade the ledger from "
				 "schema %lld: %s; nothing was changed",
				 (long long)version, inner);
			goto end;
		}
		how = STORE_SQL_UPGRADED;
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
	if (rc != ERR_OK || how == STORE_SQL_FAILED || how == STORE_SQL_REFUSED)
		return false;
	*made = how == STORE_SQL_CREATED;
	return true;
}
