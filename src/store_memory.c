/* store_memory.c — the memory store: everything in the process, gone at exit.
 *
 * Events are packed 32-byte records in fixed blocks (appending never moves
 * or copies old ones); position p is record p - 1, so positions are gapless
 * by construction. Each record links to the previous event of its stream,
 * so reading a stream after version v walks only the events after v and
 * never scans unrelated ones. Stream ids are interned once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/account.h"
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"

#define BLOCK_BITS 16
#define BLOCK_LEN ((size_t)1 << BLOCK_BITS)

typedef struct mem_event {
	int64_t amount;		/* > 0 credited, < 0 debited */
	int64_t time_ms;
	uint64_t prev;		/* position of the stream's previous event */
	uint32_t stream;	/* interned id */
	uint32_t version;
} mem_event;

typedef struct mem_store {
	struct store base;
	mem_event **blocks;
	size_t nblocks;
	uint64_t head;		/* last position = number of events */
	idmap *ids;
	uint64_t *last;		/* by stream: position of its last event */
	uint32_t *version;	/* by stream */
	int64_t *balance;	/* by stream: its events added up */
	uint32_t cap;		/* of last, version and balance */
} mem_store;

static mem_event *at(mem_store *m, uint64_t position)
{
	uint64_t i = position - 1;
	return &m->blocks[i >> BLOCK_BITS][i & (BLOCK_LEN - 1)];
}

static void to_event(mem_store *m, uint64_t position, store_event *ev)
{
	const mem_event *e = at(m, position);
	ev->position = position;
	ev->version = e->version;
	ev->stream = idmap_key(m->ids, e->stream);
	ev->stream_key = e->stream + 1;
	ev->type = e->amount < 0 ? EVENT_DEBITED : EVENT_CREDITED;
	/* amounts are at least 1, so -amount never overflows here */
	ev->amount = e->amount < 0 ? -e->amount : e->amount;
	ev->time_ms = e->time_ms;
}

/* ev's id and its length. */
static size_t id_len(const store_new_event *ev)
{
	return ev->stream_len ? ev->stream_len : strlen(ev->stream);
}

/* The index of ev's stream, or IDMAP_NONE. A key the caller kept from an
 * earlier append is checked with one compare of the id; only without one,
 * or when it no longer names this id, is the id hashed and probed. */
static uint32_t find_stream(mem_store *m, const store_new_event *ev, size_t len)
{
	if (ev->stream_key != NULL && *ev->stream_key != 0 &&
	    idmap_is(m->ids, *ev->stream_key - 1, ev->stream, len))
		return *ev->stream_key - 1;
	return idmap_find(m->ids, ev->stream, len);
}

/* The index of a stream, interned now if it is new. */
static uint32_t new_stream(mem_store *m, const char *stream, size_t len)
{
	bool added;
	uint32_t idx = idmap_intern(m->ids, stream, len, &added);
	if (idx >= m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->last = xreallocarray(m->last, m->cap, sizeof *m->last);
		m->version = xreallocarray(m->version, m->cap, sizeof *m->version);
		m->balance = xreallocarray(m->balance, m->cap, sizeof *m->balance);
	}
	if (added) {
		m->last[idx] = 0;
		m->version[idx] = 0;
		m->balance[idx] = 0;
	}
	return idx;
}

/* Writes one checked event at the next position. */
static void push(mem_store *m, uint32_t idx, const store_new_event *ev,
		 int64_t time_ms)
{
	if ((m->head >> BLOCK_BITS) == m->nblocks) {
		m->blocks = xreallocarray(m->blocks, m->nblocks + 1,
					  sizeof *m->blocks);	/* NOLINT(bugprone-sizeof-expression): pointers */
		m->blocks[m->nblocks++] = xmalloc(BLOCK_LEN * sizeof(mem_event));
	}
	uint64_t pos = ++m->head;
	mem_event *e = at(m, pos);
	e->amount = ev->type == EVENT_DEBITED ? -ev->amount : ev->amount;
	e->time_ms = time_ms;
	e->prev = m->last[idx];
	e->stream = idx;
	e->version = ++m->version[idx];
	m->balance[idx] += e->amount;	/* check() kept it in range */
	m->last[idx] = pos;
	if (ev->stream_key != NULL)
		*ev->stream_key = idx + 1;
}

/* Checks ev against its stream's version, given its index (or
 * IDMAP_NONE), `earlier` events of this append before it on the same
 * stream, which leave its balance at *balance (in: the balance before
 * them; out: after ev). An event that would not fit a record, or would
 * take the balance out of 0..INT64_MAX, is the store's failure. */
static error_code check(mem_store *m, uint32_t idx, uint64_t earlier,
			const store_new_event *ev, int64_t *balance)
{
	uint64_t v = (idx == IDMAP_NONE ? 0 : m->version[idx]) + earlier;
	if (v != ev->expected_version)
		return ERR_CONFLICT;
	if (v >= UINT32_MAX ||
	    !account_next_balance(*balance, ev->type, ev->amount, balance)) {
		snprintf(m->base.errmsg, sizeof m->base.errmsg,
			 "memory store: event out of range");
		return ERR_STORAGE;
	}
	return ERR_OK;
}

static int64_t balance_of(const mem_store *m, uint32_t idx)
{
	return idx == IDMAP_NONE ? 0 : m->balance[idx];
}

/* A deposit or a withdrawal: one event, so nothing to compare within the
 * append and no list of indexes to keep. Most appends are this one. */
static error_code append_one(mem_store *m, const store_new_event *ev,
			     int64_t time_ms, uint64_t *last_position)
{
	size_t len = id_len(ev);
	uint32_t idx = find_stream(m, ev, len);
	int64_t balance = balance_of(m, idx);
	error_code rc = check(m, idx, 0, ev, &balance);
	if (rc != ERR_OK)
		return rc;
	if (idx == IDMAP_NONE)
		idx = new_stream(m, ev->stream, len);
	push(m, idx, ev, time_ms);
	*last_position = m->head;
	return ERR_OK;
}

static error_code mem_append(store *s, const store_new_event *evs, size_t n,
			     int64_t time_ms, uint64_t *last_position)
{
	mem_store *m = (mem_store *)s;
	if (n == 1)
		return append_one(m, evs, time_ms, last_position);
	uint32_t small[4];
	int64_t small_balances[4];
	uint32_t *ids = n <= 4 ? small : xreallocarray(NULL, n, sizeof *ids);
	int64_t *balances = n <= 4 ? small_balances
			    : xreallocarray(NULL, n, sizeof *balances);
	error_code rc = ERR_OK;
	/* Check every expectation before changing anything: all or nothing.
	 * An earlier event of this append to the same stream counts. */
	for (size_t i = 0; i < n && rc == ERR_OK; i++) {
		ids[i] = find_stream(m, &evs[i], id_len(&evs[i]));
		uint64_t earlier = 0;
		int64_t balance = balance_of(m, ids[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(evs[j].stream, evs[i].stream) == 0) {
				earlier++;
				balance = balances[j];
			}
		rc = check(m, ids[i], earlier, &evs[i], &balance);
		balances[i] = balance;
	}
	for (size_t i = 0; i < n && rc == ERR_OK; i++) {
		uint32_t idx = ids[i];
		if (idx == IDMAP_NONE)	/* a new stream (or one new earlier here) */
			idx = new_stream(m, evs[i].stream, id_len(&evs[i]));
		push(m, idx, &evs[i], time_ms);
	}
	if (ids != small) {
		free(ids);
		free(balances);
	}
	if (rc == ERR_OK)
		*last_position = m->head;
	return rc;
}

static error_code mem_read_stream(store *s, const char *stream,
				  uint64_t after_version, store_event_fn fn,
				  void *ctx)
{
	mem_store *m = (mem_store *)s;
	uint32_t idx = idmap_find(m->ids, stream, strlen(stream));
	if (idx == IDMAP_NONE || m->version[idx] <= after_version)
		return ERR_OK;
	/* Walk back from the last event to the first one wanted, then deliver
	 * them oldest first. */
	size_t n = m->version[idx] - after_version;
	uint64_t small[16];
	uint64_t *pos = n <= 16 ? small : xreallocarray(NULL, n, sizeof *pos);
	uint64_t p = m->last[idx];
	for (size_t i = n; i-- > 0;) {
		pos[i] = p;
		p = at(m, p)->prev;
	}
	for (size_t i = 0; i < n; i++) {
		store_event ev;
		to_event(m, pos[i], &ev);
		if (fn(ctx, &ev))
			break;
	}
	if (pos != small)
		free(pos);
	return ERR_OK;
}

static error_code mem_read_all(store *s, uint64_t after, size_t limit,
			       store_event_fn fn, void *ctx)
{
	mem_store *m = (mem_store *)s;
	for (uint64_t p = after + 1; p <= m->head && limit > 0; p++, limit--) {
		store_event ev;
		to_event(m, p, &ev);
		if (fn(ctx, &ev))
			break;
	}
	return ERR_OK;
}

static error_code mem_stream_state(store *s, const char *stream, size_t len,
				   uint32_t *key, uint64_t *version,
				   int64_t *balance)
{
	mem_store *m = (mem_store *)s;
	store_new_event ev = { .stream = stream, .stream_key = key };
	uint32_t idx = find_stream(m, &ev, len);
	if (idx == IDMAP_NONE)
		return ERR_OK;
	*version = m->version[idx];
	*balance = m->balance[idx];
	*key = idx + 1;
	return ERR_OK;
}

static error_code mem_head(store *s, uint64_t *head)
{
	*head = ((mem_store *)s)->head;
	return ERR_OK;
}

static error_code mem_stream_count(store *s, uint64_t *count)
{
	*count = idmap_count(((mem_store *)s)->ids);
	return ERR_OK;
}

static error_code mem_streams(store *s, const char *prefix, store_stream_fn fn,
			      void *ctx)
{
	mem_store *m = (mem_store *)s;
	size_t len = strlen(prefix);
	for (uint32_t i = 0; i < idmap_count(m->ids); i++) {
		const char *id = idmap_key(m->ids, i);
		if (strncmp(id, prefix, len) == 0 && fn(ctx, id))
			break;
	}
	return ERR_OK;
}

static void mem_free(store *s)
{
	mem_store *m = (mem_store *)s;
	for (size_t i = 0; i < m->nblocks; i++)
		free(m->blocks[i]);
	free(m->blocks);
	free(m->last);
	free(m->version);
	free(m->balance);
	idmap_free(m->ids);
	free(m);
}

static const store_ops memory_ops = {
	.kind = "memory",
	.trusted = true,	/* only this process writes it */
	.free = mem_free,
	.append = mem_append,
	.read_stream = mem_read_stream,
	.read_all = mem_read_all,
	.stream_state = mem_stream_state,
	.head = mem_head,
	.stream_count = mem_stream_count,
	.streams = mem_streams,
};

store *store_memory_open(const char *arg, char *why, size_t why_len)
{
	(void)arg;	/* "memory" names it all */
	(void)why;	/* and it always opens */
	(void)why_len;
	mem_store *m = xcalloc(1, sizeof *m);
	m->base.ops = &memory_ops;
	m->ids = idmap_new();
	return &m->base;
}
