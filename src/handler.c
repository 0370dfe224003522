/* handler.c — the account handler: load, decide, append, retry on conflict.
 *
 * It keeps each account's last known state with its version. The cache is
 * only ever a prefix of the stream, so it can be behind but never wrong, and
 * the first attempt trusts it: an append carries the cached version, so if
 * the stream moved the store says conflict and the next attempt starts
 * again from the state the store keeps beside the stream
 * (store_stream_state: one lookup however long the stream, and inside a
 * write group no round trip at all) plus any events after it. So does an
 * account not cached yet. A refusal is never
 * made on the cache alone: it is decided again on what the store holds now.
 * So a command costs the same whatever the length of the account's
 * history, and the usual one asks the store nothing before its append. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "simplecqrs/account.h"
#include "simplecqrs/handler.h"
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"
#include "store_impl.h"

/* What the handler knows of one account. */
typedef struct known {
	account_state st;
	uint32_t key;		/* the store's key for the stream, 0 if none:
				   handed back so the store need not hash the
				   id again */
} known;

struct handler {
	store *store;
	idmap *ids;
	known *cache;		/* by interned id */
	uint32_t cap;
	int64_t (*clock)(void);	/* what events are stamped with */
};

static int64_t wall_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

handler *handler_new(store *s)
{
	handler *h = xcalloc(1, sizeof *h);
	h->store = s;
	h->clock = wall_clock;
	h->ids = idmap_new();
	return h;
}

void handler_free(handler *h)
{
	if (h == NULL)
		return;
	idmap_free(h->ids);
	free(h->cache);
	free(h);
}

typedef struct fold {
	account_state st;
	error_code err;
	store *store;		/* for the message of a broken rule */
} fold;

/* store.c has checked each event on its own (and the balance, when the
 * read starts at version 1); this folds it onto the cached state, which
 * store.c does not know, so a balance leaving 0..INT64_MAX is caught here. */
static int fold_event(void *ctx, const store_event *ev)
{
	fold *f = ctx;
	if (ev->version != f->st.version + 1) {
		f->err = store_base_fail(f->store, "damaged ledger: account %s goes "
				    "from version %llu to version %llu "
				    "(position %llu); versions have no gaps",
				    ev->stream,
				    (unsigned long long)f->st.version,
				    (unsigned long long)ev->version,
				    (unsigned long long)ev->position);
		return 1;
	}
	int64_t before = f->st.balance;
	f->err = account_apply(&f->st, ev->type, ev->amount);
	if (f->err != ERR_OK)
		f->err = store_fail_balance(f->store, ev, before);
	return f->err != ERR_OK;
}

/* Caches st (and the store's key) as the account's latest known state;
 * *slot is its cache slot, IDMAP_NONE until it has one. */
static void remember(handler *h, uint32_t *slot, const char *account,
		     size_t len, const account_state *st, uint32_t key)
{
	if (*slot == IDMAP_NONE) {
		*slot = idmap_intern(h->ids, account, len, NULL);
		if (*slot >= h->cap) {
			h->cap = h->cap ? h->cap * 2 : 64;
			h->cache = xreallocarray(h->cache, h->cap,
						 sizeof *h->cache);
		}
	}
	h->cache[*slot] = (known){ *st, key };
}

/* The account's state: the cached one, plus (when fresh, or when nothing is
 * cached) the events the store has after it. *key is the store's key for
 * the stream as far as the cache knows it (0: not known). */
static error_code load(handler *h, const char *account, size_t len,
		       bool fresh, account_state *st, uint32_t *slot,
		       uint32_t *key)
{
	*slot = idmap_find(h->ids, account, len);
	fold f = { .st = { 0, 0 }, .err = ERR_OK, .store = h->store };
	*key = 0;
	if (*slot != IDMAP_NONE) {
		f.st = h->cache[*slot].st;
		*key = h->cache[*slot].key;
		if (!fresh) {
			*st = f.st;
			return ERR_OK;
		}
	}
	/* not cached, or to be read again: the store's snapshot (inside a
	 * write group a durable store answers from memory, without a round
	 * trip), then whatever follows it */
	account_state kept;
	if (store_stream_state(h->store, account, len, key, &kept.version,
			       &kept.balance) != ERR_OK)
		return ERR_STORAGE;
	if (kept.version >= f.st.version)
		f.st = kept;
	uint64_t had = f.st.version;
	if (store_read_stream(h->store, account, had, fold_event, &f) != ERR_OK)
		return ERR_STORAGE;
	if (f.err != ERR_OK)
		return f.err;
	/* an account with no stream is not kept */
	if (f.st.version > 0 && (*slot == IDMAP_NONE ||
				 h->cache[*slot].st.version != f.st.version))
		remember(h, slot, account, len, &f.st, *key);
	*st = f.st;
	return ERR_OK;
}

/* Appends evs; on success folds them into the cache too, with the keys
 * the store gave back. */
static error_code append(handler *h, const store_new_event *evs,
			 account_state *states, uint32_t *slots, size_t n,
			 handler_result *res)
{
	error_code rc = store_append(h->store, evs, n, h->clock(),
				     &res->position);
	if (rc != ERR_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (account_apply(&states[i], evs[i].type, evs[i].amount))
			return ERR_STORAGE;
		remember(h, &slots[i], evs[i].stream, evs[i].stream_len,
			 &states[i], *evs[i].stream_key);
	}
	res->version = n ? states[n - 1].version : 0;
	return ERR_OK;
}

/* What one attempt will append: a debit of from and/or a credit of to. */
typedef struct plan {
	store_new_event evs[2];
	account_state states[2];
	uint32_t slots[2];
	uint32_t keys[2];	/* the store's keys: hints in, keys out */
	size_t n;
} plan;

/* Loads one account and asks its rule; on ERR_OK adds the event to the
 * plan. res->balance is the balance the rule saw. */
static error_code plan_event(handler *h, const char *account, size_t len,
			     event_type type, int64_t amount, bool fresh,
			     plan *pl, handler_result *res)
{
	account_state *st = &pl->states[pl->n];
	uint32_t *key = &pl->keys[pl->n];
	error_code rc = load(h, account, len, fresh, st, &pl->slots[pl->n], key);
	if (rc != ERR_OK)
		return rc;
	res->balance = st->balance;
	rc = type == EVENT_DEBITED ? account_can_withdraw(st, amount)
				   : account_can_deposit(st, amount);
	if (rc != ERR_OK)
		return rc;
	pl->evs[pl->n++] = (store_new_event){
		.stream = account, .expected_version = st->version,
		.type = type, .amount = amount, .stream_len = len,
		.stream_key = key,
	};
	return ERR_OK;
}

/* The debit of from and/or the credit of to, in that order: ERR_OK with the
 * plan filled in, or the first rule that says no. */
static error_code decide(handler *h, const char *from, size_t from_len,
			 const char *to, size_t to_len, int64_t amount,
			 bool fresh, plan *pl, handler_result *res)
{
	error_code rc = ERR_OK;
	pl->n = 0;
	if (from)
		rc = plan_event(h, from, from_len, EVENT_DEBITED, amount, fresh,
				pl, res);
	if (rc == ERR_OK && to)
		rc = plan_event(h, to, to_len, EVENT_CREDITED, amount, fresh,
				pl, res);
	return rc;
}

/* The load-decide-append loop every command shares, retried while another
 * writer wins the append. */
static error_code execute(handler *h, const char *from, size_t from_len,
			  const char *to, size_t to_len, int64_t amount,
			  handler_result *res)
{
	memset(res, 0, sizeof *res);
	/* The first attempt is decided on the cache; a stale cache costs it a
	 * conflict without any race, so it does not use up a retry. */
	for (unsigned attempt = 0;; attempt++) {
		plan pl;
		bool fresh = attempt > 0;
		error_code rc = decide(h, from, from_len, to, to_len, amount,
				       fresh, &pl, res);
		if (rc != ERR_OK && rc != ERR_STORAGE && !fresh)	/* confirm */
			rc = decide(h, from, from_len, to, to_len, amount, true,
				    &pl, res);
		if (rc != ERR_OK)
			return rc;
		rc = append(h, pl.evs, pl.states, pl.slots, pl.n, res);
		if (rc != ERR_CONFLICT)
			return rc;
		res->conflicts++;
		if (attempt == HANDLER_RETRIES + 1)
			return ERR_CONFLICT;
	}
}

error_code handler_deposit(handler *h, const char *account, size_t len,
			   int64_t amount, handler_result *res)
{
	return execute(h, NULL, 0, account, len, amount, res);
}

error_code handler_withdraw(handler *h, const char *account, size_t len,
			    int64_t amount, handler_result *res)
{
	return execute(h, account, len, NULL, 0, amount, res);
}

error_code handler_transfer(handler *h, const char *from, size_t from_len,
			    const char *to, size_t to_len, int64_t amount,
			    handler_result *res)
{
	if (from_len == to_len && memcmp(from, to, from_len) == 0)
		return ERR_SAME_ACCOUNT;
	return execute(h, from, from_len, to, to_len, amount, res);
}

void handler_set_clock(handler *h, int64_t (*clock)(void))
{
	h->clock = clock ? clock : wall_clock;
}
