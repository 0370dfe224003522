/* xmalloc.h — allocation that cannot fail.
 *
 * Running out of memory is handled here, in one place: the process reports it
 * on stderr and exits with status 3 (the store failed while running). */
#ifndef SIMPLECQRS_XMALLOC_H
#define SIMPLECQRS_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array of n elements of size each, exiting on overflow or OOM. */
void *xreallocarray(void *ptr, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
