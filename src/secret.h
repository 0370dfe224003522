/* secret.h — passwords never shown (private to src/): masking a store URI
 * for people, and scrubbing messages that may quote connection text. */
#ifndef SIMPLECQRS_SECRET_H
#define SIMPLECQRS_SECRET_H

#include <stddef.h>

/* uri with any password taken out (user:secret@ becomes user@, and a
 * password=… parameter's value becomes ***), for showing to people. Always
 * NUL-terminates out. (store_safe_uri says it in store.h.) */
void secret_safe_uri(const char *uri, char *out, size_t out_len);

/* Replaces in text every form of a password that uri (or extra, when not
 * NULL) holds, raw, %-decoded or in pieces, by ***; keeps it terminated
 * within text_len. For messages that can quote connection text. */
void secret_scrub(const char *uri, const char *extra, char *text,
		  size_t text_len);

#endif
