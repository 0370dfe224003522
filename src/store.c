/* store.c — opening a store by URI, and the calls every backend answers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "simplecqrs/buf.h"
#include "store_impl.h"

const char *event_type_name(event_type type)
{
	return type == EVENT_DEBITED ? "AccountDebited" : "AccountCredited";
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void store_safe_uri(const char *uri, char *out, size_t out_len)
{
	buf b = { 0 };
	const char *p = uri, *scheme = strstr(uri, "://");
	if (scheme) {
		/* userinfo runs from after :// to the last @ before the path */
		const char *auth = scheme + 3;
		const char *end = auth + strcspn(auth, "/?#");
		const char *at = NULL;
		for (const char *q = auth; q < end; q++)
			if (*q == '@')
				at = q;
		const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon) {
			buf_put(&b, uri, (size_t)(colon - uri));
			p = at;
		}
	}
	while (*p) {
		const char *key = strstr(p, "password=");
		if (key == NULL || (key != uri && key[-1] != '?' && key[-1] != '&')) {
			if (key == NULL) {
				buf_puts(&b, p);
				break;
			}
			buf_put(&b, p, (size_t)(key - p) + 9);
			p = key + 9;
			continue;
		}
		buf_put(&b, p, (size_t)(key - p) + 9);
		buf_puts(&b, "***");
		p = key + 9 + strcspn(key + 9, "&#");
	}
	snprintf(out, out_len, "%s", b.len ? buf_cstr(&b) : "");
	buf_free(&b);
}

error_code store_open(const char *uri, store **out, char *why, size_t why_len)
{
	*out = NULL;
	if (strcmp(uri, "memory") == 0) {
		*out = store_memory_open();
		return ERR_OK;
	}
	if (starts_with(uri, "sqlite:")) {
#if HAVE_SQLITE
		*out = store_sqlite_open(uri + 7, why, why_len);
		return *out ? ERR_OK : ERR_STORAGE;
#else
		snprintf(why, why_len, "this build has no SQLite support "
			 "(rebuild with SQLite's headers installed)");
		return ERR_STORAGE;
#endif
	}
	if (starts_with(uri, "postgresql://") || starts_with(uri, "postgres://")) {
#if HAVE_LIBPQ
		*out = store_pg_open(uri, why, why_len);
		return *out ? ERR_OK : ERR_STORAGE;
#else
		snprintf(why, why_len, "this build lacks PostgreSQL support "
			 "(rebuild with libpq's headers installed)");
		return ERR_STORAGE;
#endif
	}
	snprintf(why, why_len,
		 "unknown store (use memory, sqlite:PATH or postgresql://...)");
	return ERR_STORAGE;
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
	error_code rc = s->ops->append(s, evs, n, time_ms, last_position);
	s->stats.appends += rc == ERR_OK;
	s->stats.conflicts += rc == ERR_CONFLICT;
	return rc;
}

store_stats store_get_stats(const store *s)
{
	return s->stats;
}

error_code store_read_stream(store *s, const char *stream,
			     uint64_t after_version, store_event_fn fn, void *ctx)
{
	return s->ops->read_stream(s, stream, after_version, fn, ctx);
}

error_code store_read_all(store *s, uint64_t after, size_t limit,
			  store_event_fn fn, void *ctx)
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

error_code store_streams(store *s, const char *prefix, store_stream_fn fn,
			 void *ctx)
{
	return s->ops->streams(s, prefix, fn, ctx);
}

error_code store_commit(store *s)
{
	return s->ops->commit ? s->ops->commit(s) : ERR_OK;
}

bool store_keeps_sheet(const store *s)
{
	return s->ops->sheet_save != NULL;
}

error_code store_sheet_checkpoint(store *s, uint64_t *checkpoint)
{
	*checkpoint = 0;
	return s->ops->sheet_checkpoint ? s->ops->sheet_checkpoint(s, checkpoint)
					: ERR_OK;
}

error_code store_sheet_load(store *s, uint64_t *checkpoint, store_balance_fn fn,
			    void *ctx)
{
	*checkpoint = 0;
	return s->ops->sheet_load ? s->ops->sheet_load(s, checkpoint, fn, ctx)
				  : ERR_OK;
}

error_code store_sheet_save(store *s, uint64_t from, uint64_t to,
			    const store_balance *rows, size_t n, bool replace)
{
	return s->ops->sheet_save ? s->ops->sheet_save(s, from, to, rows, n, replace)
				  : ERR_OK;
}

error_code store_fail(store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
	va_end(ap);
	return ERR_STORAGE;
}
