/* store.c — opening a store by URI, and the calls every backend answers. */
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "store_impl.h"

const char *event_type_name(event_type type)
{
	return type == EVENT_DEBITED ? "AccountDebited" : "AccountCredited";
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int store_open(const char *uri, store **out, char *why, size_t why_len)
{
	*out = NULL;
	if (strcmp(uri, "memory") == 0) {
		*out = store_memory_open();
		return 0;
	}
	if (starts_with(uri, "sqlite:")) {
		snprintf(why, why_len, "this build lacks SQLite support");
		return 1;
	}
	if (starts_with(uri, "postgresql://") || starts_with(uri, "postgres://")) {
		snprintf(why, why_len, "this build lacks PostgreSQL support");
		return 1;
	}
	snprintf(why, why_len,
		 "unknown store '%.64s' (use memory, sqlite:PATH or postgresql://...)",
		 uri);
	return 1;
}

void store_free(store *s)
{
	if (s)
		s->ops->free(s);
}

const char *store_kind(const store *s)
{
	return s->ops->kind;
}

const char *store_errmsg(const store *s)
{
	return s->errmsg[0] ? s->errmsg : "the store failed";
}

error_code store_append(store *s, const store_new_event *evs, size_t n,
			int64_t time_ms, uint64_t *last_position)
{
	return s->ops->append(s, evs, n, time_ms, last_position);
}

int store_read_stream(store *s, const char *stream, uint64_t after_version,
		      store_event_fn fn, void *ctx)
{
	return s->ops->read_stream(s, stream, after_version, fn, ctx);
}

int store_read_all(store *s, uint64_t after, size_t limit, store_event_fn fn,
		   void *ctx)
{
	return s->ops->read_all(s, after, limit, fn, ctx);
}

error_code store_head(store *s, uint64_t *head)
{
	return s->ops->head(s, head);
}

error_code store_count_after(store *s, uint64_t after, uint64_t *count)
{
	return s->ops->count_after(s, after, count);
}

error_code store_stream_count(store *s, uint64_t *count)
{
	return s->ops->stream_count(s, count);
}

int store_streams(store *s, const char *prefix, store_stream_fn fn, void *ctx)
{
	return s->ops->streams(s, prefix, fn, ctx);
}
