/* store_base.c — the bottom of the store: what every backend may call
 * (setting the store's failure message, asking its wait hook) and the
 * names of the event types. It calls nothing of the store above it. */
#include <stdarg.h>
#include <stdio.h>
#include "store_impl.h"

const char *event_type_name(event_type type)
{
	return type == EVENT_DEBITED ? "AccountDebited" : "AccountCredited";
}

error_code store_base_fail(store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
	va_end(ap);
	return ERR_STORAGE;
}

bool store_base_waiting(store *s, unsigned waited_ms)
{
	return s->wait == NULL || s->wait(s->wait_ctx, waited_ms);
}
