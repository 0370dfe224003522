/* store.c — opening a store by URI, and the calls every backend answers;
 * the write group (opened by an append, rolled back here when a write
 * fails halfway, ended by store_commit); what a backend reads back is
 * checked here before anyone uses it. */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "config.h"
#include "simplecqrs/account.h"
#include "simplecqrs/parse.h"
#include "secret.h"
#include "store_impl.h"

void store_safe_uri(const char *uri, char *out, size_t out_len)
{
	secret_safe_uri(uri, out, out_len);
}

/* ---- opening: one table line per backend ---- */

typedef struct backend {
	const char *kind;
	const char *prefix[2];	/* a URI of this store starts with one */
	bool exact;		/* the URI is the prefix, nothing after it */
	bool whole;		/* open takes the whole URI, else what follows
				   the prefix */
	/* a near miss (any case, any slashes after): refused with near_why
	 * rather than guessed at */
	const char *loose[2];
	const char *near_why;
	/* NULL when this build lacks the backend: then missing says so */
	store *(*open)(const char *arg, char *why, size_t why_len);
	const char *missing;
} backend;

static const backend backends[] = {
	{ .kind = "memory", .prefix = { "memory" }, .exact = true,
	  .open = store_memory_open },
	{ .kind = "sqlite", .prefix = { "sqlite:" },
#if HAVE_SQLITE
	  .open = store_sqlite_open,
#endif
	  .missing = "this build has no SQLite support "
		     "(rebuild with SQLite's headers installed)" },
	{ .kind = "postgresql", .prefix = { "postgresql://", "postgres://" },
	  .whole = true,
	  /* libpq would take postgresql:/u:pw@host for a key=value string
	   * and quote all of it back, password included */
	  .loose = { "postgresql:", "postgres:" },
	  .near_why = "a PostgreSQL URI starts with postgresql:// "
		      "(two slashes, lower case)",
#if HAVE_LIBPQ
	  .open = store_pg_open,
#endif
	  .missing = "this build lacks PostgreSQL support "
		     "(rebuild with libpq's headers installed)" },
};

/* The length of b's prefix that uri starts with, or 0. */
static size_t match(const backend *b, const char *uri)
{
	for (size_t i = 0; i < 2 && b->prefix[i]; i++) {
		size_t n = strlen(b->prefix[i]);
		if (b->exact ? strcmp(uri, b->prefix[i]) == 0
			     : strncmp(uri, b->prefix[i], n) == 0)
			return n;
	}
	return 0;
}

static bool near_miss(const backend *b, const char *uri)
{
	for (size_t i = 0; i < 2 && b->loose[i]; i++)
		if (strncasecmp(uri, b->loose[i], strlen(b->loose[i])) == 0)
			return true;
	return false;
}

error_code store_open(const char *uri, store **out, char *why, size_t why_len)
{
	*out = NULL;
	for (size_t i = 0; i < sizeof backends / sizeof *backends; i++) {
		const backend *b = &backends[i];
		size_t n = match(b, uri);
		if (n == 0 && !near_miss(b, uri))
			continue;
		if (n == 0 || b->open == NULL) {
			snprintf(why, why_len, "%s", n == 0 ? b->near_why : b->missing);
			return ERR_STORAGE;
		}
		*out = b->open(b->whole ? uri : uri + n, why, why_len);
		if (*out == NULL)
			return ERR_STORAGE;
		/* Tests only: each append this much slower (a slow command),
		 * so that a group outlasts its time bound with few events. */
		const char *delay = getenv("SIMPLECQRS_TEST_APPEND_DELAY_MS");
		(*out)->test_append_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
		return ERR_OK;
	}
	snprintf(why, why_len,
		 "unknown store (use memory, sqlite:PATH or postgresql://...)");
	return ERR_STORAGE;
}

void store_free(store *s)
{
	if (s) {
		char *location = s->location;
		s->ops->free(s);
		free(location);
	}
}

const char *store_location(const store *s)
{
	return s->location;
}

bool store_created(const store *s)
{
	return s->created;
}

void store_set_wait(store *s, store_wait_fn fn, void *ctx)
{
	s->wait = fn;
	s->wait_ctx = ctx;
}

error_code store_poll(store *s, bool *changed)
{
	*changed = true;
	return s->ops->poll ? s->ops->poll(s, changed) : ERR_OK;
}

const char *store_kind(const store *s)
{
	return s->ops->kind;
}

const char *store_errmsg(const store *s)
{
	return s->errmsg[0] ? s->errmsg : "the store failed";
}

/* ---- write groups ----
 *
 * In a grouping backend (sqlite, postgresql) the first write after a
 * commit opens a transaction, and later writes join it; store_commit ends
 * it. The backend only runs the transactions: the group is kept here. The
 * rules that keep "no result before its commit" true live here, once: a
 * group that failed halfway is rolled back and reported by the next
 * store_commit (exactly once), and a group never grows past GROUP_MAX
 * events nor, while another shell waits for the lock, lasts past
 * GROUP_MAX_MS from its begin, when the write lock was granted
 * (committing early is always safe; late never is). The time bound is
 * what other shells waiting for the lock pay at most for a group (one
 * monotonic clock read per append: a vDSO call, nothing measurable); a
 * shell alone keeps its group, since each commit costs an fsync and the
 * index pages it rewrites (asking whether anyone waits at most every
 * GROUP_ASK_MS). */

#define GROUP_MAX 16384
#ifndef GROUP_MAX_MS
#define GROUP_MAX_MS 100
#endif
#define GROUP_ASK_MS 10

static uint64_t group_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

error_code store_group_begin(store *s)
{
	if (s->in_group || s->ops->begin == NULL)
		return ERR_OK;
	error_code rc = s->ops->begin(s);
	if (rc == ERR_OK) {
		s->in_group = true;
		s->group_events = 0;
		s->group_began_ms = group_clock_ms();
	}
	return rc;
}

/* Rolls the open group back, keeping the reason of the failure that led
 * here rather than anything the rollback says. */
static void drop_group(store *s)
{
	if (!s->in_group)
		return;
	char why[sizeof s->errmsg];
	memcpy(why, s->errmsg, sizeof why);
	s->ops->rollback(s);
	memcpy(s->errmsg, why, sizeof why);
	s->in_group = false;
}

error_code store_group_wrote(store *s, error_code rc)
{
	if (rc != ERR_OK && rc != ERR_CONFLICT && s->in_group) {
		drop_group(s);	/* half a write is never kept */
		s->lost = true;
	}
	return rc;
}

error_code store_commit(store *s)
{
	if (s->lost) {	/* a group failed halfway; errmsg says why */
		drop_group(s);	/* and nothing opened since is kept */
		s->lost = false;
		return ERR_STORAGE;
	}
	if (!s->in_group)
		return ERR_OK;
	error_code rc = s->ops->commit(s);
	if (rc != ERR_OK)
		drop_group(s);	/* reported here and now, so not lost */
	s->in_group = false;
	return rc;
}

/* The open group, n events longer now, is to be committed: it is full, or
 * past its time bound while someone waits for the lock. */
static bool group_is_over(store *s, size_t n)
{
	if ((s->group_events += n) >= GROUP_MAX)
		return true;
	uint64_t now = group_clock_ms();
	if (now - s->group_began_ms < GROUP_MAX_MS ||
	    now - s->group_asked_ms < GROUP_ASK_MS)
		return false;
	if (s->ops->others_waiting == NULL || s->ops->others_waiting(s))
		return true;
	s->group_asked_ms = now;
	return false;
}

error_code store_append(store *s, const store_new_event *evs, size_t n,
			int64_t time_ms, uint64_t *last_position)
{
	error_code rc = store_group_begin(s);
	if (rc != ERR_OK)
		return rc;
	if (s->test_append_delay_ms > 0) {
		long ms = s->test_append_delay_ms;
		struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
		nanosleep(&ts, NULL);
	}
	rc = store_group_wrote(s, s->ops->append(s, evs, n, time_ms,
						  last_position));
	s->stats.appends += rc == ERR_OK;
	s->stats.conflicts += rc == ERR_CONFLICT;
	if (rc == ERR_OK && s->in_group && group_is_over(s, n) &&
	    store_commit_early(s) != ERR_OK)
		return ERR_STORAGE;
	return rc;
}

error_code store_commit_early(store *s)
{
	s->stats.early_commits += s->in_group;
	error_code rc = store_commit(s);
	if (rc != ERR_OK)
		s->lost = true;	/* results of the group wait in the session */
	return rc;
}

store_stats store_get_stats(const store *s)
{
	return s->stats;
}

/* ---- nothing read back is trusted ----
 *
 * A SQLite file can be edited or damaged and a PostgreSQL database is
 * shared with anyone who can write to it, so every event and kept row a
 * backend hands back passes through here before anyone else sees it: ids
 * of 1 to 64 of A-Z a-z 0-9 _ - ., known types, amounts above 0, positions
 * that grow, versions without gaps where the call says which version comes
 * next, and balances that stay in 0..INT64_MAX where the call starts from
 * nothing.
 * A ledger that breaks one of these is ERR_STORAGE with a message naming
 * the account and the event, never a value shown or folded as it is. The
 * text of an id that fails goes into the message raw: out.c escapes
 * messages where it prints them. */

#define DAMAGED "damaged ledger: "

typedef struct checked {
	store_event_fn fn;
	void *ctx;
	const char *stream;	/* read_stream: the stream asked for */
	uint64_t after;		/* read_all: the position asked after */
	size_t limit;		/* read_all: at most so many */
	size_t seen;
	uint64_t position;	/* of the last event passed on */
	uint64_t version;	/* read_stream: of the last event passed on */
	bool from_start;	/* read_stream from version 0: balance known */
	int64_t balance;
	bool bad;
	char *why;		/* WHY_LEN bytes, set when bad (a refresh reads
				   once per command: not zeroed each time) */
} checked;

#define WHY_LEN sizeof ((store *)0)->errmsg

static int damaged(checked *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int damaged(checked *c, const char *fmt, ...)
{
	size_t n = strlen(DAMAGED);
	memcpy(c->why, DAMAGED, n);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why + n, WHY_LEN - n, fmt, ap);
	va_end(ap);
	c->bad = true;
	return 1;
}

/* "'id'" with at most 64 bytes of it, for a message about an id that
 * failed the syntax (which may be any bytes at all, or none). */
const char *store_quoted_id(const char *id, char *dst, size_t len)
{
	if (id == NULL)
		return "no account id";
	snprintf(dst, len, "the account id '%.64s%s' (not 1 to 64 of "
		 "A-Z a-z 0-9 _ - .)", id, strlen(id) > 64 ? "..." : "");
	return dst;
}

/* parse_account in one pass (no strlen first): every event of a refresh
 * comes through here. */
static bool valid_id(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i <= PARSE_MAX_ID && parse_id_bytes[u[i]])
		i++;
	return i > 0 && i <= PARSE_MAX_ID && u[i] == '\0';
}

/* The one message for an event that takes its account's balance out of
 * 0..INT64_MAX, from before: the store's checks, the handler's and the
 * sheet's all say it so. */
static void broken_balance(char *dst, size_t len, const store_event *ev,
			   int64_t before)
{
	snprintf(dst, len, "account %s version %llu (position %llu): the "
		 "balance %lld %s %lld %s", ev->stream,
		 (unsigned long long)ev->version,
		 (unsigned long long)ev->position, (long long)before,
		 ev->type == EVENT_CREDITED ? "plus" : "less",
		 (long long)ev->amount,
		 ev->type == EVENT_CREDITED ? "passes 9223372036854775807"
					    : "goes below 0");
}

error_code store_fail_balance(store *s, const store_event *ev, int64_t before)
{
	char msg[WHY_LEN];
	broken_balance(msg, sizeof msg, ev, before);
	return store_base_fail(s, DAMAGED "%s", msg);
}

/* Says which rule the event broke (check_event found that one did): out
 * of line, so the check itself stays a few compares. */
static __attribute__((cold, noinline)) int explain(checked *c,
						    const store_event *ev)
{
	char idbuf[160];
	unsigned long long pos = (unsigned long long)ev->position;
	unsigned long long ver = (unsigned long long)ev->version;
	const char *id = ev->stream;
	if (id == NULL || !valid_id(id))
		return damaged(c, "the event at position %llu has %s", pos,
			       store_quoted_id(id, idbuf, sizeof idbuf));
	if (c->stream && strcmp(id, c->stream) != 0)
		return damaged(c, "reading account %s gave an event of %s "
			       "(position %llu)", c->stream, id, pos);
	if (ev->type != EVENT_CREDITED && ev->type != EVENT_DEBITED)
		return damaged(c, "account %s version %llu (position %llu) has "
			       "type %d, neither AccountCredited (1) nor "
			       "AccountDebited (2)", id, ver, pos, (int)ev->type);
	if (ev->amount <= 0)
		return damaged(c, "account %s version %llu (position %llu) has "
			       "amount %lld; amounts are above 0", id, ver, pos,
			       (long long)ev->amount);
	if (ev->position <= c->position)
		return damaged(c, "account %s version %llu has position %llu "
			       "after position %llu; positions only grow", id,
			       ver, pos, (unsigned long long)c->position);
	if (ev->version == 0)
		return damaged(c, "account %s has version 0 at position %llu; "
			       "versions start at 1", id, pos);
	if (c->stream && ev->version != c->version + 1)
		return damaged(c, "account %s goes from version %llu to version "
			       "%llu (position %llu); versions have no gaps", id,
			       (unsigned long long)c->version, ver, pos);
	if (c->stream) {
		char msg[WHY_LEN];
		broken_balance(msg, sizeof msg, ev, c->balance);
		return damaged(c, "%s", msg);
	}
	return damaged(c, "a read of at most %zu events gave more", c->limit);
}

static int check_event(void *ctx, const store_event *ev)
{
	checked *c = ctx;
	if (ev->stream == NULL || !valid_id(ev->stream) ||
	    (ev->type != EVENT_CREDITED && ev->type != EVENT_DEBITED) ||
	    ev->amount <= 0 || ev->position <= c->position || ev->version == 0)
		return explain(c, ev);
	if (c->stream) {
		if (strcmp(ev->stream, c->stream) != 0 ||
		    ev->version != c->version + 1)
			return explain(c, ev);
		if (c->from_start) {
			if (!account_next_balance(c->balance, ev->type,
						  ev->amount, &c->balance))
				return explain(c, ev);
		}
		c->version = ev->version;
	} else if (++c->seen > c->limit) {
		return explain(c, ev);
	}
	c->position = ev->position;
	return c->fn(c->ctx, ev);
}

/* The result of a checked read: the backend's failure, or what the
 * checks found, or ERR_OK. */
static error_code checked_result(store *s, error_code rc, const checked *c)
{
	if (rc == ERR_OK && c->bad)
		return store_base_fail(s, "%s", c->why);
	return rc;
}

error_code store_read_stream(store *s, const char *stream,
			     uint64_t after_version, store_event_fn fn, void *ctx)
{
	if (s->ops->trusted)
		return s->ops->read_stream(s, stream, after_version, fn, ctx);
	char why[WHY_LEN];
	checked c = { .fn = fn, .ctx = ctx, .stream = stream, .why = why,
		      .version = after_version, .from_start = after_version == 0 };
	return checked_result(s, s->ops->read_stream(s, stream, after_version,
						     check_event, &c), &c);
}

error_code store_read_all(store *s, uint64_t after, size_t limit,
			  store_event_fn fn, void *ctx)
{
	if (s->ops->trusted)
		return s->ops->read_all(s, after, limit, fn, ctx);
	char why[WHY_LEN];
	checked c = { .fn = fn, .ctx = ctx, .after = after, .limit = limit,
		      .position = after, .why = why };
	return checked_result(s, s->ops->read_all(s, after, limit, check_event,
						  &c), &c);
}

error_code store_stream_state(store *s, const char *stream, size_t len,
			      uint32_t *key, uint64_t *version, int64_t *balance)
{
	*version = 0;
	*balance = 0;
	if (s->ops->stream_state == NULL)	/* keeps none: replay it all */
		return ERR_OK;
	error_code rc = s->ops->stream_state(s, stream, len, key, version,
					     balance);
	if (rc != ERR_OK || s->ops->trusted)
		return rc;
	/* a row can be edited as an event can: what it says must be a state */
	if (*balance < 0 || *version > INT64_MAX || (*version == 0 && *balance))
		return store_base_fail(s, DAMAGED "account %.64s is kept at "
				       "version %llu with balance %lld", stream,
				       (unsigned long long)*version,
				       (long long)*balance);
	return ERR_OK;
}

error_code store_head(store *s, uint64_t *head)
{
	return s->ops->head(s, head);
}

/* Every store here gives positions 1..head without gaps (memory and sqlite
 * by counting, postgresql by taking max + 1 under its write lock), so the
 * events after a position are a subtraction, not a count over them. */
error_code store_count_after(store *s, uint64_t after, uint64_t *count)
{
	uint64_t head;
	error_code rc = store_head(s, &head);
	*count = rc == ERR_OK && after < head ? head - after : 0;
	return rc;
}

error_code store_stream_count(store *s, uint64_t *count)
{
	return s->ops->stream_count(s, count);
}

typedef struct checked_names {
	store_stream_fn fn;
	void *ctx;
} checked_names;

/* Completion shows the ids it gets: one that is not an id is left out
 * rather than shown (or made an error where there is nobody to tell). */
static int check_name(void *ctx, const char *stream)
{
	checked_names *c = ctx;
	return stream && parse_account(stream) ? c->fn(c->ctx, stream) : 0;
}

error_code store_streams(store *s, const char *prefix, store_stream_fn fn,
			 void *ctx)
{
	checked_names c = { fn, ctx };
	return s->ops->streams(s, prefix, check_name, &c);
}

