/* json.h — JSON string escaping.
 *
 * json_put_string() always produces a valid JSON string literal, whatever the
 * bytes: control characters become escapes, and bytes that are not valid
 * UTF-8 become U+FFFD, so every line JSON mode prints parses. */
#ifndef SIMPLECQRS_JSON_H
#define SIMPLECQRS_JSON_H

#include <stddef.h>
#include "simplecqrs/buf.h"

/* Appends "..." (with the quotes) holding s[0..n) escaped. */
void json_put_string(buf *b, const char *s, size_t n);
void json_put_cstring(buf *b, const char *s);

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
size_t json_utf8_len(const unsigned char *s, size_t n);

#endif
